"""Demo jobs for `loom sandbox --seed-demo-data`, so a fresh sandbox has something to browse and claim."""

from __future__ import annotations

import secrets

from loom_cli.addresses import to_checksum
from loom_cli.sandbox.db import Database
from loom_cli.sandbox.jobs import JobService, check_spec

_DEMO_SPECS: list[dict] = [
    {
        "name": "Render Blender scene, frames 1-120",
        "description": "Cycles render of a product turntable at 1920x1080.\nWrites one PNG per frame to /out.",
        "image": "linuxserver/blender:4.1.1",
        "command": ["blender", "-b", "/in/turntable.blend", "-o", "/out/frame_####", "-s", "1", "-e", "120", "-a"],
        "resources": {"cpu": 8, "memory": "16Gi", "disk": "20Gi", "gpu": {"count": 1, "model": "nvidia-rtx-4090"}},
        "inputs": [{"uri": "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", "path": "/in/turntable.blend"}],
        "outputs": [{"path": "/out"}],
        "reward": {"amount": "42.5", "currency": "LOOM"},
        "timeout": "6h",
        "labels": {"kind": "render"},
    },
    {
        "name": "Fine-tune a small text classifier",
        "description": "Fine-tunes distilbert-base-uncased on 20k labelled support tickets for 3 epochs.",
        "image": "pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime",
        "command": ["python", "/in/train.py", "--epochs", "3", "--out", "/out/model"],
        "env": {"HF_HUB_OFFLINE": "1", "SEED": "7"},
        "resources": {"cpu": 4, "memory": "24Gi", "disk": "40Gi", "gpu": {"count": 1, "model": "nvidia-a100"}},
        "inputs": [
            {"uri": "s3://loom-demo-datasets/tickets-20k.parquet", "path": "/in/tickets.parquet"},
            {"uri": "https://example.com/loom-demo/train.py", "path": "/in/train.py"},
        ],
        "outputs": [{"path": "/out/model"}],
        "reward": {"amount": "120", "currency": "LOOM"},
        "timeout": "12h",
        "labels": {"kind": "training", "team": "support-ml"},
    },
    {
        "name": "Transcode lecture videos to 720p",
        "image": "jrottenberg/ffmpeg:6.1-alpine",
        "command": ["sh", "-c", "for f in /in/*.mp4; do ffmpeg -i \"$f\" -vf scale=-2:720 \"/out/$(basename \"$f\")\"; done"],
        "resources": {"cpu": 2, "memory": "4Gi", "disk": "50Gi"},
        "inputs": [{"uri": "ar://Zy8m1yJ0bq9cQ0kHq3Ff2fXg5b7nQvU3Yd9mWc2kTtA", "path": "/in"}],
        "outputs": [{"path": "/out"}],
        "reward": {"amount": "7.25", "currency": "LOOM"},
        "timeout": "3h",
    },
    {
        "name": "Monte Carlo option pricing, 10M paths",
        "image": "python:3.12-slim",
        "command": ["python", "-c", "import random; print(sum(random.random() for _ in range(10_000_000)))"],
        "resources": {"cpu": 1, "memory": "512Mi"},
        "reward": {"amount": "0.75", "currency": "LOOM"},
        "timeout": "30m",
        "labels": {"kind": "batch"},
    },
    {
        "name": "Nightly genome alignment batch",
        "description": "Aligns 48 paired-end samples against GRCh38 with bwa-mem2.",
        "image": "quay.io/biocontainers/bwa-mem2:2.2.1--hd03093a_5",
        "command": ["bwa-mem2", "mem", "-t", "16", "/ref/GRCh38.fa", "/in/sample_R1.fq.gz", "/in/sample_R2.fq.gz"],
        "env": {"OMP_NUM_THREADS": "16"},
        "resources": {"cpu": 16, "memory": "64Gi", "disk": "500Gi"},
        "inputs": [{"uri": "s3://loom-demo-genomes/batch-0425/", "path": "/in"}],
        "outputs": [{"path": "/out/aligned"}],
        "reward": {"amount": "310", "currency": "USDC"},
        "timeout": "1d",
    },
]


def seed_demo_data(jobs: JobService, db: Database) -> int:
    """Add the demo jobs, created by one random seed address, when the database contains no job; return how many."""
    with db.transaction() as conn:
        if conn.execute("SELECT 1 FROM jobs LIMIT 1").fetchone() is not None:
            return 0
    creator = to_checksum(db.get_or_set_meta("seed_address", lambda: "0x" + secrets.token_hex(20)))
    # Created in reverse so that the listing, newest first, shows them in the order above.
    for spec in reversed(_DEMO_SPECS):
        jobs.create(creator, check_spec(spec))
    return len(_DEMO_SPECS)
