// The Worker: the students bundled from models/ (see scripts/bundle-models.ts).
import { manifestJson, modelFiles } from "../models/bundle.ts";
import { createWorker } from "./worker.ts";

export default createWorker(manifestJson, modelFiles);
