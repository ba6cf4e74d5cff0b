import { svelte } from "@sveltejs/vite-plugin-svelte";
import { defineConfig } from "vite";

// The console is served by authapi at /admin/ under a strict CSP (script-src 'self',
// style-src 'self'): every script and style is a file, none is inlined.
export default defineConfig({
  base: "/admin/",
  plugins: [svelte()],
  resolve: {
    // gen/ts/client.ts imports openapi-fetch; take the console's pinned copy, not whatever
    // node_modules lies above gen/ts.
    dedupe: ["openapi-fetch"],
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
    // The build's timing report is noise in `make gen` on a busy machine.
    rolldownOptions: { checks: { bundlerTimings: false } },
  },
  server: {
    fs: { allow: [".", "../gen/ts"] },
    proxy: { "/api": "http://127.0.0.1:8000" },
  },
});
