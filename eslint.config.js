import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: [".bench-build/", "dist/", "node_modules/", "coverage/", ".sandbox/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: "readonly", console: "readonly", URL: "readonly" } },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": "error",
    },
  },
  {
    files: ["src/planner/**", "src/plan/render/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: ["node:*", "ioredis", "**/redis/connect*", "**/observe/observe*"] },
      ],
      "no-restricted-globals": ["error", "process", "Date"],
    },
  },
);
