// The Hugging Face JS client (@huggingface/inference) pointed at erserve with
// endpointUrl: TEI's routes and the Inference API's /models/{task}; every
// result must parse in the client's own checks (it throws
// InferenceClientProviderOutputError on a shape it does not know).
// usage: node hf_client.mjs BASE_URL  (tasks cls, ner, emb, qa; exits non-zero on mismatch)
import { InferenceClient } from "@huggingface/inference";

const [base] = process.argv.slice(2);
const hf = new InferenceClient();
function check(cond, msg) { if (!cond) { console.error("FAIL: " + msg); process.exit(1); } }
const isNum = (x) => typeof x === "number" && Number.isFinite(x);

// featureExtraction: TEI's /embed (a batch) and the Inference API's pipeline (one text)
const fe = await hf.featureExtraction({ endpointUrl: `${base}/embed`, inputs: ["hello world", "again"] });
check(Array.isArray(fe) && fe.length === 2 && fe[0].length === 64 && fe[0].every(isNum), "featureExtraction /embed");
const fe1 = await hf.featureExtraction({ endpointUrl: `${base}/models/emb`, inputs: "hello world" });
check(fe1.length === 64 && fe1.every(isNum), "featureExtraction /models/emb");
for (let i = 0; i < 64; i++) check(Math.abs(fe1[i] - fe[0][i]) < 1e-5, "the same vector at " + i);

// textClassification: [{label, score}] sorted by score
const tc = await hf.textClassification({ endpointUrl: `${base}/models/cls`, inputs: "I loved this film" });
check(Array.isArray(tc) && tc.length === 2 && tc.every((x) => typeof x.label === "string" && isNum(x.score)),
      "textClassification: " + JSON.stringify(tc));
check(tc[0].score >= tc[1].score && Math.abs(tc[0].score + tc[1].score - 1) < 1e-5, "softmax, sorted");

// tokenClassification: [{entity_group, score, word, start, end}] (simple aggregation)
const text = "Ann Smith lives in Oslo and works for Acme in Bergen";
const ner = await hf.tokenClassification({ endpointUrl: `${base}/models/ner`, inputs: text });
check(Array.isArray(ner), "tokenClassification: an array");
for (const e of ner)
  check(text.slice(e.start, e.end).length > 0 && typeof e.entity_group === "string", "entity " + JSON.stringify(e));
const raw = await hf.tokenClassification({ endpointUrl: `${base}/models/ner`, inputs: text,
                                           parameters: { aggregation_strategy: "none" } })
  .catch((e) => e);
// without aggregation the pipeline names `entity`, not `entity_group`: the client refuses that shape
check(raw instanceof Error || raw.length === 0, "aggregation none is not the client's shape");

// questionAnswering: {answer, score, start, end}, the answer a slice of the context
const context = "Ann lives in Oslo. She works for Acme.";
const qa = await hf.questionAnswering({ endpointUrl: `${base}/models/qa`,
                                        inputs: { question: "Where does Ann live?", context } });
check(typeof qa.answer === "string" && isNum(qa.score) && context.slice(qa.start, qa.end) === qa.answer,
      "questionAnswering: " + JSON.stringify(qa));

// sentenceSimilarity: TEI's /similarity (cosines against the source)
const sim = await hf.sentenceSimilarity({ endpointUrl: `${base}/similarity`,
                                          inputs: { source_sentence: "hello world",
                                                    sentences: ["hello world", "a zebra"] } });
check(Array.isArray(sim) && sim.length === 2 && sim.every(isNum) && Math.abs(sim[0] - 1) < 1e-5,
      "sentenceSimilarity: " + JSON.stringify(sim));
const sim2 = await hf.sentenceSimilarity({ endpointUrl: `${base}/models/emb`,
                                           inputs: { source_sentence: "hello world", sentences: ["a zebra"] } });
check(Math.abs(sim2[0] - sim[1]) < 1e-5, "the same similarity from /models/emb");

// TEI's /tokenize through a plain fetch: slices of the input, null offsets for specials
const r = await fetch(`${base}/tokenize`, { method: "POST", headers: { "Content-Type": "application/json" },
                                            body: JSON.stringify({ inputs: "Hello Café" }) });
const toks = await r.json();
check(r.status === 200 && toks.length === 1, "tokenize: one list");
const t = toks[0];
check(t[0].special && t[0].start === null && t[0].stop === null && t[0].text === "[CLS]", "[CLS]: " + JSON.stringify(t[0]));
check(t[1].text === "Hello" && t[1].start === 0 && t[1].stop === 5, "a slice: " + JSON.stringify(t[1]));
check(t[2].text === "Café" && t[2].start === 6 && t[2].stop === 11, "bytes, not code points: " + JSON.stringify(t[2]));

// a TEI error reaches the caller with TEI's body
const bad = await fetch(`${base}/embed`, { method: "POST", headers: { "Content-Type": "application/json" },
                                           body: JSON.stringify({ inputs: [] }) });
const be = await bad.json();
check(bad.status === 400 && be.error_type === "Empty" && typeof be.error === "string", "TEI error: " + JSON.stringify(be));
console.log("huggingface client: ok");
