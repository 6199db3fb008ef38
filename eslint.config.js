// ESLint (flat config): TypeScript's recommended rules and React's hooks rules over the UI and the
// test scripts. `scripts/test.sh` runs `eslint .`; generated and vendored files are ignored.
import js from "@eslint/js";
import reactHooks from "eslint-plugin-react-hooks";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  {
    ignores: ["ui/src/bindings.ts", "ui/dist/**", "src-tauri/**", "crates/**", "fuzz/**", "demo/**", ".venv/**", "tests/artifacts/**", "tests/fixtures/generated/**", "**/node_modules/**"],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["ui/src/**/*.{ts,tsx}"],
    languageOptions: { globals: globals.browser },
    plugins: { "react-hooks": reactHooks },
    rules: {
      "react-hooks/rules-of-hooks": "error",
      // useQuery (ui/src/lib/query.ts) takes a dependency list like useEffect: check it the same way.
      "react-hooks/exhaustive-deps": ["error", { additionalHooks: "(useQuery)" }],
    },
  },
  {
    files: ["**/*.{js,mjs,cjs}", "ui/vite.config.ts"],
    languageOptions: { globals: globals.node },
  },
  {
    // End-to-end tests pass functions to browser.execute: they run in the app's webview.
    files: ["tests/e2e/**/*.mjs"],
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
  },
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrorsIgnorePattern: "^_" }],
    },
  },
);
