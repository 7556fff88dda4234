# Sourced by allocequal.sh and allocmeasures.sh (with cli and shared set): their calibration and
# their scoring of a recipe (TinyStories validation perplexity and KL from the float model over
# 200 windows of 512, as "bits/weight | ppl | KL").
calib=$shared/data/c4/c4_en_validation_sample_first1000.jsonl
stories=$shared/data/tinystories/valid_hf_first1000_eot.txt
cal=(--calib "$calib" --samples 64 --seqlen 256)
score() { "$cli" eval "$1" --data "$stories" --chunks 200 --recipe "$2" "${cal[@]}" --kl-ref "$1" --json 2>/dev/null |
  python3 -c "
import json,sys
a=json.load(sys.stdin)
print('%.4f | %.2f | %.4f' % (a['quantization']['bits_per_weight'], a['ppl'], a['kl']['mean_kl']))"; }
