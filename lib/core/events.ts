/**
 * The typed event emitter of the issuer, the guard and the caller: listeners subscribe through
 * `events`, the package calls `emit`, and a listener that throws never breaks the request or call
 * that emitted (the next listeners still run).
 */
import { EventEmitter } from 'node:events';

/** A typed event emitter as the host sees it: `on`, `once` and `off` with each event's payload type. */
export interface TypedEvents<M> {
  on<K extends keyof M & string>(event: K, listener: (payload: M[K]) => void): this;
  once<K extends keyof M & string>(event: K, listener: (payload: M[K]) => void): this;
  off<K extends keyof M & string>(event: K, listener: (payload: M[K]) => void): this;
}

/** Sends one event to its listeners. */
export type EmitFunction<M> = <K extends keyof M & string>(name: K, payload: M[K]) => void;

/** The emitting side of {@link TypedEvents}. */
export interface TypedEmitter<M> {
  /** What the host subscribes to. */
  events: TypedEvents<M>;
  /** Calls each listener of `name` in turn, ignoring any that throws. */
  emit: EmitFunction<M>;
  /** Whether `name` has a listener: lets a hot path skip building a payload nobody reads. */
  has(name: keyof M & string): boolean;
}

/** A {@link TypedEmitter} for the event map `M`. */
export function createTypedEmitter<M>(): TypedEmitter<M> {
  const emitter = new EventEmitter();
  return {
    events: emitter as unknown as TypedEvents<M>,
    emit(name, payload) {
      if (emitter.listenerCount(name) === 0) return;
      // rawListeners: a `once` listener's wrapper, which removes it when called.
      for (const listener of emitter.rawListeners(name)) {
        try {
          (listener as (p: typeof payload) => void)(payload);
        } catch {
          // The host's listener failed: it must not turn a good answer into a failure.
        }
      }
    },
    has: (name) => emitter.listenerCount(name) > 0,
  };
}
