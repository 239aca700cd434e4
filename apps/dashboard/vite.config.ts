import { defineConfig } from 'vite';

// Built into dist/ and served by the gateway at / (assets under /assets, hashed names).
export default defineConfig({
  base: '/',
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 600 },
});
