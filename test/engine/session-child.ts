/**
 * Child process of telemetry.test.ts (not a test): creates, runs and releases one inference
 * session through src/engine/ort.ts, then prints "ok <pid>".
 */
import { createSession, ort } from "../../src/engine/ort.ts";
import { Graph } from "../../src/graph/graph.ts";
import { serialize } from "../../src/graph/onnx.ts";

const g = new Graph();
const y = g.relu(g.input("x", [2]));
const s = await createSession(serialize(g, [{ name: "y", tensor: y }]).bytes);
const out = await s.run({ x: new ort.Tensor("float32", Float32Array.of(1, -1), [2]) });
if (Array.from(out.y!.data as Float32Array).join(",") !== "1,0") throw new Error("relu gave a wrong answer");
await s.release();
console.log(`ok ${process.pid}`);
