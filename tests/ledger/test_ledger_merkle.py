"""The Merkle tree against RFC 6962's reference vectors and a direct implementation of its definition."""

from __future__ import annotations

from hashlib import sha256

import pytest

from governance.ledger.merkle import (
    EMPTY_ROOT,
    ConsistencyProof,
    Frontier,
    InclusionProof,
    consistency_path,
    inclusion_path,
    leaf_hash,
    mth,
    node_hash,
    split_point,
    verify_consistency,
    verify_inclusion,
)

# Certificate Transparency's reference leaves and tree heads (used by every RFC 6962 implementation).
CT_LEAVES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = {
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}
CT_CONSISTENCY = {
    (1, 8): CT_INCLUSION[(0, 8)],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}

LEAVES = [leaf_hash(sha256(str(i).encode()).digest()) for i in range(70)]


def reference_mth(leaves: list[bytes]) -> bytes:
    """RFC 6962, 2.1, verbatim: split at the largest power of two smaller than n."""
    if not leaves:
        return sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = split_point(len(leaves))
    return node_hash(reference_mth(leaves[:k]), reference_mth(leaves[k:]))


def subtree_of(leaves: list[bytes]):
    return lambda start, end: reference_mth(leaves[start:end])


def test_roots_match_the_rfc_6962_reference_vectors():
    leaves = [leaf_hash(data) for data in CT_LEAVES]
    assert [mth(leaves[:n]).hex() for n in range(9)] == CT_ROOTS
    assert EMPTY_ROOT.hex() == CT_ROOTS[0]


def test_proofs_match_the_reference_vectors():
    subtree = subtree_of([leaf_hash(data) for data in CT_LEAVES])
    for (index, size), expected in CT_INCLUSION.items():
        assert [p.hex() for p in inclusion_path(index, size, subtree)] == expected
    for (old, new), expected in CT_CONSISTENCY.items():
        assert [p.hex() for p in consistency_path(old, new, subtree)] == expected


@pytest.mark.parametrize("size", range(0, 70))
def test_bottom_up_hash_and_frontier_equal_the_rfc_definition(size):
    frontier = Frontier()
    for leaf in LEAVES[:size]:
        frontier.push(0, leaf)
    assert mth(LEAVES[:size]) == frontier.root() == reference_mth(LEAVES[:size])


def test_frontier_reports_every_completed_node_with_its_position():
    frontier = Frontier()
    made = [node for leaf in LEAVES[:8] for node in frontier.push(0, leaf)]
    assert (3, 0, reference_mth(LEAVES[:8])) in made
    assert (1, 2, reference_mth(LEAVES[4:6])) in made
    assert len(made) == 8 + 4 + 2 + 1


def test_every_inclusion_proof_verifies_and_any_alteration_fails():
    subtree = subtree_of(LEAVES)
    for size in range(1, 40):
        root = reference_mth(LEAVES[:size])
        for index in range(size):
            path = inclusion_path(index, size, subtree)
            assert verify_inclusion(LEAVES[index], index, size, path, root)
            assert not verify_inclusion(LEAVES[index], index, size, path, sha256(root).digest())
            assert not verify_inclusion(LEAVES[(index + 1) % 70], index, size, path, root)
            if size > 1:
                assert not verify_inclusion(LEAVES[index], (index + 1) % size, size, path, root)
                assert not verify_inclusion(LEAVES[index], index, size, path[:-1], root)
            for k in range(len(path)):
                bad = list(path)
                bad[k] = sha256(bad[k]).digest()
                assert not verify_inclusion(LEAVES[index], index, size, bad, root)


def test_every_consistency_proof_verifies_and_any_alteration_fails():
    subtree = subtree_of(LEAVES)
    for new in range(1, 40):
        new_root = reference_mth(LEAVES[:new])
        for old in range(0, new + 1):
            old_root = reference_mth(LEAVES[:old])
            path = consistency_path(old, new, subtree)
            assert verify_consistency(old, new, old_root, new_root, path)
            if 0 < old < new:
                forked = reference_mth(LEAVES[: old - 1] + [LEAVES[69]] + LEAVES[old:new])
                assert not verify_consistency(old, new, old_root, forked, path)
                assert not verify_consistency(old, new, reference_mth(LEAVES[1 : old + 1]), new_root, path)
                assert not verify_consistency(old - 1, new, old_root, new_root, path)
                for k in range(len(path)):
                    bad = list(path)
                    bad[k] = sha256(bad[k]).digest()
                    assert not verify_consistency(old, new, old_root, new_root, bad)


def test_proof_objects_verify_and_reject_altered_fields():
    subtree = subtree_of(LEAVES)
    entry_hash = sha256(b"5").digest()
    leaves = LEAVES[:5] + [leaf_hash(entry_hash)] + LEAVES[6:20]
    tree = subtree_of(leaves)
    proof = InclusionProof(
        seq=6,
        size=20,
        entry_hash=entry_hash.hex(),
        path=tuple(p.hex() for p in inclusion_path(5, 20, tree)),
        root=reference_mth(leaves).hex(),
    )
    assert proof.verify()
    for changes in (
        {"seq": 7},
        {"size": 40},
        {"entry_hash": "00" * 32},
        {"root": "zz"},
        {"path": proof.path[:-1] + ("ab" * 32,)},
    ):
        assert not InclusionProof(**{**proof.__dict__, **changes}).verify(), changes
    consistency = ConsistencyProof(
        old_size=7,
        new_size=20,
        old_root=reference_mth(LEAVES[:7]).hex(),
        new_root=reference_mth(LEAVES[:20]).hex(),
        path=tuple(p.hex() for p in consistency_path(7, 20, subtree)),
    )
    assert consistency.verify()
    for changes in ({"old_size": 8}, {"new_root": "00" * 32}, {"path": consistency.path[1:]}):
        assert not ConsistencyProof(**{**consistency.__dict__, **changes}).verify(), changes
