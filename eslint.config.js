// Lint rules that guard the design, not style: floating promises are bugs; workflow code must be
// deterministic (no Node built-ins, activities imported as types only).
const tseslint = require("typescript-eslint");

module.exports = tseslint.config(
  { ignores: ["node_modules/**", "dist/**", ".data/**", ".tools/**", "coverage/**", "eslint.config.js", "jest.config.js"] },
  {
    files: ["**/*.ts"],
    extends: [tseslint.configs.base],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: __dirname } },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: { arguments: false } }],
    },
  },
  {
    files: ["workflows/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { group: ["node:*", "fs", "child_process", "crypto", "os", "path", "net", "http", "https"], message: "workflows run in a deterministic sandbox: do I/O in activities" },
            { group: ["../activities/*", "../activities/**"], allowTypeImports: true, message: "workflows import activity types only" },
            { group: ["@prisma/*", "pg", "express"], message: "workflows do no I/O" },
          ],
        },
      ],
    },
  },
);
