/** Types for what Vite and Svelte bring in that TypeScript does not know. */
declare module '*.css' {}
declare module '*.svelte' {
  import type { Component } from 'svelte';

  const component: Component<Record<string, unknown>>;
  export default component;
}
