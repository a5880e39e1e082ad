// The official `openai` npm client against erserve's /v1/embeddings.
// usage: node openai_client.mjs BASE_URL MODEL  (exits non-zero on mismatch)
import OpenAI from "openai";

const [baseURL, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0, timeout: 20000 });
function check(cond, msg) { if (!cond) { console.error("FAIL: " + msg); process.exit(1); } }

// Default: the client asks for base64 and decodes it into floats.
const b = await client.embeddings.create({ model, input: ["hello world", "second text"] });
check(b.object === "list" && b.data.length === 2, "base64: two embeddings");
check(b.data[0].embedding.length > 0 && typeof b.data[0].embedding[0] === "number", "base64 decoded to numbers");
check(b.usage.prompt_tokens > 0 && b.usage.total_tokens === b.usage.prompt_tokens, "usage");
const f = await client.embeddings.create({ model, input: "hello world", encoding_format: "float" });
check(f.data.length === 1 && f.data[0].embedding.length === b.data[0].embedding.length, "float length");
for (let i = 0; i < f.data[0].embedding.length; i++)
  check(Math.abs(f.data[0].embedding[i] - b.data[0].embedding[i]) < 1e-6, "float == base64 at " + i);
const d = await client.embeddings.create({ model, input: "hello", dimensions: 8, encoding_format: "float" });
check(d.data[0].embedding.length === 8, "dimensions");
try {
  await client.embeddings.create({ model: "no-such-model", input: "x" });
  check(false, "unknown model must fail");
} catch (e) {
  check(e.status === 404 && /no task/.test(e.message), "404 with the error message: " + e.message);
}
console.log("openai client: ok");
