# Sourced by the benchmarks that need the synthetic SmolLM-135M-shaped model and the C4 sample:
# sets $model (absolute) and $calib, writes the model once, and gives it a tokenizer. Exits 0
# with a message when ../shared lacks what they need. Expects $make, $models and $shared.
calib=$shared/data/c4/c4_en_validation_sample_first1000.jsonl
if [ ! -f "$calib" ] || [ ! -f "$shared/models/stories260k/tokenizer.model" ]; then
  echo "skipped: needs $calib and the stories260k tokenizer in $shared"; exit 0
fi
mkdir -p "$models"
model=$(cd "$models" && pwd)/smollm-135m-f32
[ -f "$model/model.safetensors" ] || "$make" "$model" --preset smollm-135m --dtype F32
# Any tokenizer with ids below the synthetic vocabulary serves; the weights are random anyway.
cp "$shared/models/stories260k/tokenizer.model" "$shared/models/stories260k/tokenizer_config.json" "$model/"
