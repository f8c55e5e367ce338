/** Builds the dashboard into web/dist, which the server serves at `/` (src/serve/routes/web.ts). */
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  plugins: [svelte()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // The chart library is the bulk of the bundle; it only loads on the symbol page.
    chunkSizeWarningLimit: 250,
  },
  server: {
    proxy: {
      '/api': 'http://localhost:8080',
      '/ws': { target: 'ws://localhost:8080', ws: true },
    },
  },
});
