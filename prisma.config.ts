import { defineConfig } from "prisma/config";
import { PrismaPg } from "@prisma/adapter-pg";

// Prisma's native engines are downloaded at first use, which these machines cannot do: the CLI runs
// its WASM schema engine over the pg driver adapter instead (see shared recipe prisma.md).
export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: "prisma/schema.prisma",
  adapter: async () => new PrismaPg({ connectionString: process.env.DATABASE_URL! }),
});
