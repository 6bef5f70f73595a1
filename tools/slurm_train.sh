#!/usr/bin/env bash
# Train with resdet on a SLURM cluster: one torchrun per node, one worker per GPU, DDP over all.
#
#   sbatch tools/slurm_train.sh det configs/frcnn_r50_fpn_coco.py work_dirs/frcnn_r50_fpn
#   sbatch --nodes=4 tools/slurm_train.sh cls configs/resnet50_imagenet.py work_dirs/r50 --cfg-options optimizer.lr=0.4
#
# Arguments: cls|det, CONFIG, WORK_DIR, then any option of `resdet train-cls` / `resdet train-det`.
# Batch sizes in configs are totals over all GPUs of all nodes.
#
# Preemption and time limit (docs/distributed.md): SLURM sends SIGUSR1 120 s before the end
# (--signal); every resdet worker finishes its iteration, writes iter_<N>.pth and exits with
# code 75; this script then requeues the job (--requeue), which starts again here and
# continues with --resume from the newest checkpoint of WORK_DIR. A preemption by another job
# (SIGTERM, then SIGKILL after the cluster's GraceTime) is requeued by SLURM itself.
#
#SBATCH --job-name=resdet
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=64
#SBATCH --time=24:00:00
#SBATCH --signal=USR1@120
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=%x-%j.out

set -euo pipefail

usage="usage: sbatch tools/slurm_train.sh cls|det CONFIG WORK_DIR [resdet train options]"
TASK=${1:?$usage}
CONFIG=${2:?$usage}
WORK_DIR=${3:?$usage}
shift 3
case "$TASK" in
    cls|det) ;;
    *) echo "slurm_train.sh: the first argument must be cls or det, got '$TASK'; $usage" >&2; exit 2 ;;
esac

# torchrun's rendezvous from SLURM's view of the job: the first node of the allocation hosts it
MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
MASTER_PORT=${MASTER_PORT:-$((20000 + SLURM_JOB_ID % 20000))}
NNODES=${SLURM_NNODES:-1}
NPROC_PER_NODE=${NPROC_PER_NODE:-${SLURM_GPUS_ON_NODE:-1}}
# each elastic restart attempt gets its own store (torchrun's shared one keeps stale addresses)
export TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}

RESUME=()
if [[ -f "$WORK_DIR/last_checkpoint" ]]; then
    RESUME=(--resume)  # a requeued job: continue from the newest readable checkpoint
fi

echo "slurm_train.sh: job ${SLURM_JOB_ID} restart ${SLURM_RESTART_COUNT:-0}: ${NNODES} nodes x" \
     "${NPROC_PER_NODE} workers, rendezvous ${MASTER_ADDR}:${MASTER_PORT}, work dir ${WORK_DIR}"

# --signals-to-handle: the agents forward SIGUSR1 to their workers instead of dying of it;
# --shutdown-timeout: the time the workers get to write their checkpoint (< the 120 s above);
# --max-restarts: a worker that dies (OOM killer, a bad node) restarts the group from the newest checkpoint
set +e
srun --kill-on-bad-exit=1 \
    torchrun --nnodes "$NNODES" --nproc-per-node "$NPROC_PER_NODE" \
        --rdzv-backend c10d --rdzv-endpoint "${MASTER_ADDR}:${MASTER_PORT}" --rdzv-id "$SLURM_JOB_ID" \
        --max-restarts 1 --signals-to-handle SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1 --shutdown-timeout 110 \
        -m resdet "train-${TASK}" "$CONFIG" --work-dir "$WORK_DIR" "${RESUME[@]}" "$@"
status=$?
set -e

# the newest of resdet's start / stop lines says whether the run stopped for a signal (exit code 75)
last_event=$(grep -E "stopped by|resumed from|training .* from iter" "$WORK_DIR/train.log" 2>/dev/null | tail -n 1 || true)
if [[ $status -ne 0 && "$last_event" == *"(exit code 75)"* ]]; then
    echo "slurm_train.sh: stopped with a checkpoint; requeueing job ${SLURM_JOB_ID}"
    scontrol requeue "$SLURM_JOB_ID"
    exit 0
fi
exit "$status"
