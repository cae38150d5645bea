/**
 * The revocation record's types: what every store that keeps one (the Knex store does) records
 * and returns. Tokens are revoked one by one, by `jti` (RFC 7009), or all those of a client issued
 * before an instant (a client disabled, deleted, or whose tokens an admin revoked).
 */

/** A token to revoke: its `jti`, the client it was issued to and its expiry (`exp`). */
export interface TokenRevocation {
  /** The token's `jti` claim: 1 to 255 characters. */
  jti: string;
  /** The token's `client_id`. */
  clientId: string;
  /** The token's `exp`: the entry is kept until then, and pruned after. */
  expiresAt: Date;
}

/** What {@link RevocationStore.isRevoked} needs of a token: its `jti`, `client_id` and `iat`. */
export interface RevocationCheck {
  jti: string;
  clientId: string;
  /** The token's `iat`, as a Date (`new Date(iat * 1000)`). */
  issuedAt: Date;
}

/**
 * One entry of the revocation record, as {@link RevocationStore.list} gives it:
 *
 * - `token`: the token with this `jti` issued to `clientId` is revoked.
 * - `client`: every token of `clientId` whose `iat` is before `revokedBefore` is revoked.
 *
 * Either way the entry matters until `expiresAt`, when every token it revokes has expired; it is
 * pruned after that.
 */
export type RevocationEntry =
  | { type: 'token'; clientId: string; jti: string; expiresAt: Date }
  | { type: 'client'; clientId: string; revokedBefore: Date; expiresAt: Date };

/** Paging of {@link RevocationStore.list}. */
export interface RevocationQuery {
  /** The `cursor` of an earlier answer: only entries changed after it. Default: from the start. */
  since?: string;
  /** At most this many entries, in the order they changed. Default 1000, at most 10 000. */
  limit?: number;
}

/** What changed in the revocation record since a cursor. */
export interface RevocationChanges {
  /** Entries added or changed after `since`, oldest change first; expired ones left out. */
  entries: RevocationEntry[];
  /** Pass it as `since` to get only what changes after this answer. Opaque: a string of digits. */
  cursor: string;
  /** True when more changes wait beyond `limit`: ask again with `cursor` at once. */
  more: boolean;
}

/**
 * The revocation record: revoked tokens by `jti` until they expire, and per client the instant
 * before which its tokens are revoked. `createKnexStore` implements it; a store of one's own may.
 *
 * @example
 * ```ts
 * await store.revocations.revokeToken({ jti, clientId, expiresAt: new Date(exp * 1000) });
 * await store.revocations.isRevoked({ jti, clientId, issuedAt: new Date(iat * 1000) });   // true
 * ```
 */
export interface RevocationStore {
  /**
   * Revokes one token. Repeating it changes nothing.
   *
   * @returns true when the token was not revoked before, false when it was, or when it has
   *   already expired (nothing is recorded then).
   * @throws TypeError for a malformed `jti`, client id or expiry; nothing is recorded.
   */
  revokeToken(token: TokenRevocation): Promise<boolean>;
  /**
   * Whether a token is revoked: by its `jti`, or because its client's tokens issued before an
   * instant after its `iat` were revoked. A token issued in the same second as such a revocation
   * counts as issued before it (`iat` is in whole seconds).
   */
  isRevoked(token: RevocationCheck): Promise<boolean>;
  /**
   * What changed since `query.since`, for a guard that keeps a copy of the record and polls it.
   *
   * @throws TypeError for a malformed cursor or limit.
   */
  list(query?: RevocationQuery): Promise<RevocationChanges>;
  /** Deletes the entries past their `expiresAt`. @returns How many it deleted. */
  prune(): Promise<number>;
}
