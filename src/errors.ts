/** The typed errors live in the core (core/errors.ts); this name stays for code outside src/. */
export * from "./core/errors.js";
