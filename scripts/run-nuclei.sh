#!/usr/bin/env bash
# The nucleus pipeline end to end: train -> predict -> score -> submission.
#
# usage: scripts/run-nuclei.sh [DATA_DIR] [--quick] [--out RUN_DIR] [--bin BIN_DIR]
#                              [--threads T] [--minutes M]
#
#   DATA_DIR   a folder holding stage1_train/ and stage1_test/ (the 2018 Data Science Bowl
#              layout). Without it, a synthetic set is generated with nuclei_synth and used.
#   --quick    a smoke run of about a minute on 2 cores: tiny model, few steps, few images.
#   --out      the run folder (default runs/<date>-<time>).
#   --bin      where nuclei_train & co. were built (default $NUCLEI_BIN, else build/examples).
#   --threads  threads for every program (default: all cores).
#   --minutes  training time budget (default: nuclei_train's, 45 minutes; --quick: none).
#
# It builds nothing: build first, e.g.
#   cmake -S . -B build && cmake --build build -j --target nuclei_train nuclei_tune \
#       nuclei_predict nuclei_score nuclei_synth
#
# Steps: 1. (no DATA_DIR) synthesise a data set; 2. train on stage1_train with a validation split
# held out; 3. tune the post-processing thresholds on the validation split; 4. predict the
# validation images and score them with the competition metric; 5. predict stage1_test into a
# submission with overlays. The end prints where everything is.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data=""
quick=0
out=""
bin="${NUCLEI_BIN:-$root/build/examples}"
threads=0
minutes=0

die() {
    echo "run-nuclei.sh: error: $*" >&2
    exit 1
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) quick=1 ;;
        --out) out="${2:?--out needs a folder}"; shift ;;
        --bin) bin="${2:?--bin needs a folder}"; shift ;;
        --threads) threads="${2:?--threads needs a number}"; shift ;;
        --minutes) minutes="${2:?--minutes needs a number}"; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) [[ -z "$data" ]] || die "two data folders given: $data and $1"; data="$1" ;;
    esac
    shift
done

for program in nuclei_train nuclei_tune nuclei_predict nuclei_score nuclei_synth; do
    [[ -x "$bin/$program" ]] || die "no $bin/$program: build the examples first (see the top \
of this script) or pass --bin BIN_DIR"
done
[[ -n "$out" ]] || out="$root/runs/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
common=(--threads "$threads")
quick_flag=()
[[ $quick -eq 1 ]] && quick_flag=(--quick)
start=$(date +%s)

# 1. the data: given, or synthetic
if [[ -z "$data" ]]; then
    echo "== no data folder given: generating a synthetic data set with nuclei_synth"
    data="$out/synthetic"
    if [[ $quick -eq 1 ]]; then
        "$bin/nuclei_synth" --out "$data" --count 32 --test-count 6 --max-side 128 "${common[@]}"
    else
        "$bin/nuclei_synth" --out "$data" --count 200 --test-count 20 "${common[@]}"
    fi
fi
[[ -d "$data/stage1_train" ]] || die "$data has no stage1_train/ folder (give the folder that \
holds stage1_train/ and stage1_test/)"
[[ -d "$data/stage1_test" ]] || die "$data has no stage1_test/ folder"

# 2. train, holding out a validation split (written to train/val_ids.txt)
echo "== training on $data/stage1_train"
train_flags=("${quick_flag[@]}" "${common[@]}")
[[ "$minutes" != 0 ]] && train_flags+=(--minutes "$minutes")
"$bin/nuclei_train" --data "$data/stage1_train" --out "$out/train" "${train_flags[@]}"

# 3. tune the post-processing on the validation split (its score is then optimistic)
echo "== tuning the post-processing on the validation split"
"$bin/nuclei_tune" --model "$out/train/best.safetensors" --data "$data/stage1_train" \
    --ids "@$out/train/val_ids.txt" --out "$out/train/tuned.safetensors" "${common[@]}" \
    > "$out/tune.log"
tail -n 5 "$out/tune.log"
model="$out/train/tuned.safetensors"

# 4. predict the validation images and score them
echo "== scoring the validation split (tuned post-processing)"
"$bin/nuclei_predict" --model "$model" --images "$data/stage1_train" \
    --ids "@$out/train/val_ids.txt" --out "$out/val" "${common[@]}" > "$out/val_predict.log"
tail -n 3 "$out/val_predict.log"
"$bin/nuclei_score" --truth "$data/stage1_train" --ids "@$out/train/val_ids.txt" \
    --pred "$out/val/submission.csv" --out "$out/scores.csv" "${common[@]}"

# 5. predict the test stage into a submission (--quick: its first 8 images only)
echo "== predicting $data/stage1_test"
test_ids=()
if [[ $quick -eq 1 ]]; then
    find "$data/stage1_test" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort | head -n 8 \
        > "$out/test_ids.txt"
    test_ids=(--ids "@$out/test_ids.txt")
fi
"$bin/nuclei_predict" --model "$model" --images "$data/stage1_test" "${test_ids[@]}" \
    --out "$out" "${common[@]}" > "$out/test_predict.log"
tail -n 3 "$out/test_predict.log"

echo "== done in $(( $(date +%s) - start )) s; results in $out"
echo "  model        $model"
echo "  curves       $out/train/curves.svg (log: $out/train/log.csv)"
echo "  val scores   $out/scores.csv (overlays: $out/val/overlays)"
echo "  submission   $out/submission.csv"
echo "  overlays     $out/overlays"
