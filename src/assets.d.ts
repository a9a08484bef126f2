// Modules wrangler's CompiledWasm rule provides (wrangler.toml [[rules]]).
declare module "*.wasm" {
  const module: WebAssembly.Module;
  export default module;
}
