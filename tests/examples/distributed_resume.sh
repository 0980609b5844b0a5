#!/bin/sh
# train_fashion_mnist --distributed, checkpointed and resumed across world sizes, on the first 2048
# images: 2 ranks train epoch 1 (rank 0 writes the checkpoint), 1 rank under mpirun resumes for
# epoch 2, then a plain process (no MPI) resumes for epoch 3. CTest checks the three runs' output.
#   usage: distributed_resume.sh MPIRUN TRAIN_FASHION_MNIST
set -eu
mpirun=$1
train=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$mpirun" -np 2 --allow-run-as-root --oversubscribe "$train" --distributed --epochs 1 \
  --save "$dir/a.ckpt" --limit 2048 --threads 1 --csv "" --png ""
"$mpirun" -np 1 --allow-run-as-root --oversubscribe "$train" --distributed --epochs 2 \
  --resume "$dir/a.ckpt" --save "$dir/b.ckpt" --limit 2048 --threads 1 --csv "" --png ""
"$train" --epochs 3 --resume "$dir/b.ckpt" --save "" --limit 2048 --threads 1 --csv "" --png ""
