// ESLint for the browser UI: plain ES modules served as they are (no build step).
// Formatting is prettier's job (`make format`); the rules here are about correctness only.

import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: [".venv/", "node_modules/", "bench/.pkgs/", "test-results/", "build/", "dist/"] },
  js.configs.recommended,
  {
    files: ["static/js/**/*.js"],
    languageOptions: {
      ecmaVersion: 2022, // top-level await in the views
      sourceType: "module",
      globals: { ...globals.browser },
    },
    rules: {
      eqeqeq: ["error", "always"],
      "no-var": "error",
      "prefer-const": "error",
      "no-implicit-coercion": ["error", { allow: ["!!"] }],
      "no-unused-vars": ["error", { args: "after-used", ignoreRestSiblings: true }],
    },
  },
  {
    // Classic scripts: csp-compat.js is loaded before Plotly; standalone-loader.js runs inline in
    // a notebook output or an exported page (attnviz/page.py).
    files: ["static/js/csp-compat.js", "static/js/standalone-loader.js"],
    languageOptions: { sourceType: "script" },
  },
  {
    files: ["eslint.config.js"],
    languageOptions: { sourceType: "module", globals: { ...globals.node } },
  },
];
