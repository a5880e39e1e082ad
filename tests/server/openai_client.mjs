// The official `openai` npm client against erserve's OpenAI routes.
// usage: node openai_client.mjs BASE_URL MODEL ALIAS  (exits non-zero on mismatch)
// The server serves MODEL (an embedding task) also as ALIAS
// (--served-model-name) and cuts inputs at 16 tokens (--max-tokens 16).
import OpenAI from "openai";

const [baseURL, model, alias] = process.argv.slice(2);
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

// models.list(): every task and the alias, as OpenAI model objects
const ids = [];
for await (const m of client.models.list()) {
  check(m.object === "model" && typeof m.created === "number" && typeof m.owned_by === "string", "model object");
  ids.push(m.id);
}
check(ids.includes(model) && ids.includes(alias), "models.list(): " + ids.join(","));
const one = await client.models.retrieve(alias);
check(one.id === alias, "models.retrieve(alias)");
try {
  await client.models.retrieve("no-such-model");
  check(false, "an unknown model must be 404");
} catch (e) {
  check(e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === "model_not_found",
        "404 model_not_found: " + e.message);
}

// the alias is served, and named in the reply
const a = await client.embeddings.create({ model: alias, input: "hello world", encoding_format: "float" });
check(a.model === alias, "reply model is the alias: " + a.model);
for (let i = 0; i < a.data[0].embedding.length; i++)
  check(Math.abs(a.data[0].embedding[i] - f.data[0].embedding[i]) < 1e-6, "alias == task at " + i);
// one embedding task: an unknown model is served by it, as TEI does
const u = await client.embeddings.create({ model: "text-embedding-ada-002", input: "x" });
check(u.model === alias, "fallback names the task's served name: " + u.model);

// over-length input: OpenAI's 400, unless the request asks to truncate
const long = Array.from({ length: 60 }, (_, i) => "word" + i).join(" ");
try {
  await client.embeddings.create({ model, input: long });
  check(false, "an over-length input must fail");
} catch (e) {
  check(e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === "input",
        "400 with param input: " + e.message);
}
const t = await client.embeddings.create({ model, input: long, truncate: true });
check(t.data.length === 1 && t.usage.prompt_tokens === 16, "truncate: true cuts to 16 tokens: " + t.usage.prompt_tokens);
try {
  await client.embeddings.create({ model, input: [] });
  check(false, "an empty input must fail");
} catch (e) {
  check(e instanceof OpenAI.BadRequestError && e.status === 400, "400 for an empty input: " + e.message);
}
console.log("openai client: ok");
