// Modules wrangler's CompiledWasm rule provides (wrangler.toml [[rules]]).
declare module "*.wasm" {
  const module: WebAssembly.Module;
  export default module;
}

// Modules wrangler's Text rule provides: the dashboard's scripts and styles, as strings.
declare module "uplot/dist/uPlot.iife.min.js" {
  const text: string;
  export default text;
}
declare module "uplot/dist/uPlot.min.css" {
  const text: string;
  export default text;
}
declare module "*/static/dashboard.js" {
  const text: string;
  export default text;
}
declare module "*/static/dashboard.css" {
  const text: string;
  export default text;
}
