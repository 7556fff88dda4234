// Perplexity of a GGUF file as llama.cpp's perplexity tool computes it, on token ids given by
// the caller: BOS, then the ids; windows of CTX tokens whose first token is set to BOS; the
// second half of each window scored (the token after position j from the logits at j, for j
// from CTX/2 to CTX-2). Prints one JSON object.
// usage: node ppl.mjs MODEL.gguf IDS_FILE CTX CHUNKS BOS_ID
import {getLlama} from "node-llama-cpp";
import {readFileSync} from "node:fs";

const [modelPath, idsFile, ctxArg, chunksArg, bosArg] = process.argv.slice(2);
const ctx = Number(ctxArg), bos = Number(bosArg);
const ids = readFileSync(idsFile, "utf8").trim().split(/\s+/).map(Number);
const tokens = [bos, ...ids];
const chunks = Math.min(Number(chunksArg), Math.floor(tokens.length / ctx));
if (chunks < 1) throw new Error(`need at least ${ctx} tokens, have ${tokens.length}`);

const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath});
// Flash attention on, as llama.cpp's "auto" chooses on a CPU; stated so the numerics are fixed.
const context = await model.createContext({contextSize: ctx, batchSize: ctx, sequences: 1, flashAttention: true});
const seq = context.getSequence();
const first = ctx / 2;
let nll = 0, count = 0;
for (let c = 0; c < chunks; ++c) {
    const window = tokens.slice(c * ctx, (c + 1) * ctx);
    window[0] = bos;
    const input = window.map((t, j) => (j >= first && j < ctx - 1 ? [t, {generateNext: {logits: true}}] : t));
    await seq.clearHistory();
    const out = await seq.controlledEvaluate(input);
    for (let j = first; j < ctx - 1; ++j) {
        const logits = out[j].next.logits;
        let max = -Infinity;
        for (const v of logits.values()) max = Math.max(max, v);
        let sum = 0;
        for (const v of logits.values()) sum += Math.exp(v - max);
        nll -= logits.get(window[j + 1]) - max - Math.log(sum);
        ++count;
    }
}
console.log(JSON.stringify({ppl: Math.exp(nll / count), tokens_scored: count, chunks, ctx}));
await context.dispose();
await model.dispose();
