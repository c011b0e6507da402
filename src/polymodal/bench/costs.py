"""The checks' last measured costs: seconds at full size per device (``polymodal bench --list``).

Measured on a 2-core CPU (the README's numbers); None where nobody has measured
yet (every GPU cost so far). A check may declare its own ``costs``
(:attr:`polymodal.bench.claims.ClaimCheck.costs`), which win over this table.
Update an entry when a check's full-size run time moves.
"""

from __future__ import annotations

from collections.abc import Mapping

from polymodal.bench.claims import ClaimCheck

MEASURED: dict[str, dict[str, float | None]] = {
    "fusion": {"cpu": 228, "cuda": None},
    "fusion_av_mnist": {"cpu": 835, "cuda": None},  # 1 thread, beside other jobs
    "divprune": {"cpu": 1641, "cuda": None},  # 1 thread, beside other jobs
    "aki": {"cpu": 32000, "cuda": None},  # an estimate: ten VLM trainings
    "text_bias": {"cpu": 1121, "cuda": None},  # 1 thread, beside other jobs, base VLM cached
    "subtype_fusion": {"cpu": 104, "cuda": None},
    "contribution": {"cpu": 94, "cuda": None},
    "abpem": {"cpu": 680, "cuda": None},  # about 11 min
    "abpem_av_mnist": {"cpu": 336, "cuda": None},
    "fratmae": {"cpu": 1761, "cuda": None},  # 2 threads, alone, phantoms cached
    "abn_blip": {"cpu": 472, "cuda": None},  # data cached; about 8 min with its build
    "av_ssl": {"cpu": 726, "cuda": None},  # 1 thread, beside other jobs, clips built
    "taste_music": {"cpu": 1290, "cuda": None},  # 1 thread, beside other jobs
    "bit_align": {"cpu": 1489, "cuda": None},  # 1 thread beside other jobs: 603 s of CPU time
    "nexus_o": {"cpu": 1433, "cuda": None},  # 1 thread, beside other jobs; base VLM cached
    "ret": {"cpu": 4503, "cuda": None},  # 1 thread beside other jobs, empty cache
    "divprune_dense": {"cpu": 2006, "cuda": None},  # 1 thread beside other jobs, empty cache
    # an estimate from its quick run (49 s per 15 VQA steps, scaled to 10 × 6,000 steps)
    "aki_dense": {"cpu": 195000, "cuda": None},
}


def costs(check: ClaimCheck) -> Mapping[str, float | None]:
    """Seconds per device (``"cpu"``, ``"cuda"``) of ``check`` at full size; a device
    missing or None has not been measured.

    Args:
        check: a registered check.

    Returns:
        The check's own ``costs`` when it declares any, else its :data:`MEASURED` row
        (empty for a check not in the table).
    """
    return check.costs or MEASURED.get(check.name, {})
