import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const root = fileURLToPath(new URL(".", import.meta.url));
// Where `npm run dev:console` sends API calls: a Keygate started with `npm start` or `npm run dev`.
const server = process.env.KEYGATE_CONSOLE_API ?? "http://127.0.0.1:8080";

export default defineConfig({
  root,
  base: "/",
  plugins: [react()],
  // Keygate replaces this with a fresh nonce in each index.html it serves, and allows inline
  // <style> only with that nonce (src/http/security.ts); main.tsx hands it to Mantine.
  html: { cspNonce: "__KEYGATE_CSP_NONCE__" },
  build: {
    outDir: fileURLToPath(new URL("./dist", import.meta.url)),
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
  },
  server: {
    proxy: {
      "/api": { target: server, changeOrigin: false },
      "/docs": { target: server },
      "/openapi.json": { target: server },
    },
  },
});
