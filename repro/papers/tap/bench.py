"""TAP in `repro bench` (`repro.bench`): Figure 5's decoy MNIST step (Table 1's own timing is `table1_timing`)."""

from __future__ import annotations

from repro.bench import Case, train_steps
from repro.papers.tap.mnist import MNIST, SWITCHES, penalty_objective


def bench_cases(members: int) -> list[Case]:
    """Figure 5's packs, `members` seeds each: the packable methods together, RBR one by one."""
    t = MNIST
    switches = {s.name: s.default for s in SWITCHES}
    mnist_steps = train_steps(t["n_train"], t["batch_size"], t["epochs"])

    def tap_case(label: str, methods: tuple[str, ...], packed: bool = True) -> Case:
        lams = {"RRR": 1e-3, "RBR": 1e3, "TAP": 1e-3}  # a step's cost does not depend on lambda
        objectives = tuple(penalty_objective(m, lams.get(m), switches) for m in methods
                           for _ in range(members))
        return Case("tap figure5", label, t["model"], objectives, t["batch_size"], (1, 28, 28), mnist_steps, t["lr"],
                    t["optimizer"], packed_in_pipeline=packed)

    return [tap_case("Base, No XS, RRR, TAP", ("Base", "No XS", "RRR", "TAP")),
            tap_case("RBR", ("RBR",), packed=False)]  # code-order influence: one by one (D-9)
