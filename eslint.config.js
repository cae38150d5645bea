// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '.scratch/', '.tmp/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        { selector: 'ExportAllDeclaration', message: 'Use explicit named exports, not export *.' },
        { selector: 'ExportDefaultDeclaration', message: 'Use named exports, not default exports.' },
      ],
    },
  },
  {
    files: ['eslint.config.js', 'knexfile.ts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    files: ['lib/**/*.ts'],
    // The bin's entry hands process.env to main(); the rest of the CLI reads io.env.
    ignores: ['lib/cli/main.ts'],
    rules: {
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Library code never reads process.env.' }],
    },
  },
  {
    // Modules a newcomer can hold in their head: one job each, short functions.
    files: ['lib/**/*.ts'],
    rules: {
      'max-lines': ['error', { max: 400, skipBlankLines: true, skipComments: true }],
      'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true }],
    },
  },
  {
    files: ['lib/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: ['express', 'knex', '../express/*', '../storage/*', '../client/*'] }],
    },
  },
);
