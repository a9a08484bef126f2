// Model files arrive in the Worker through wrangler's Data rule (wrangler.toml [[rules]]): bytes.
declare module "*.onnx" {
  const bytes: ArrayBuffer;
  export default bytes;
}
