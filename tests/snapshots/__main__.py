"""`python -m tests.snapshots update`: rewrite the asset-graph snapshot after reviewing a change (`make snapshot`)."""

import sys

from governance.settings import apply_offline_env


def main(argv: list[str]) -> int:
    if argv != ["update"]:
        print("usage: python -m tests.snapshots update", file=sys.stderr)
        return 2
    apply_offline_env()
    from tests.snapshots.asset_graph import SNAPSHOT, update

    changes = update()
    print(changes or f"{SNAPSHOT} already matches the definitions")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
