"""Platform throughput (see aicity/platform/bench.py): writes bench/results/platform.json."""

import json
import sys
from pathlib import Path

from aicity.platform.bench import run_platform_bench

if __name__ == "__main__":
    records = run_platform_bench(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0)
    out = Path(__file__).parent / "results" / "platform.json"
    out.write_text(json.dumps(records, indent=2))
    print(json.dumps(records, indent=2))
