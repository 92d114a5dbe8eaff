"""The account hierarchy: ancestors, descendants and subtree sums (pure functions)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the store uses makes_cycle; only the type comes back from it
    from rollup.store import CountRow

Parents = Mapping[str, str | None]


def ancestors(account_id: str, parents: Parents) -> list[str]:
    """Return the account's ancestors, nearest first (a cycle in the data stops the walk)."""
    chain: list[str] = []
    seen = {account_id}
    parent = parents.get(account_id)
    while parent is not None and parent not in seen:
        chain.append(parent)
        seen.add(parent)
        parent = parents.get(parent)
    return chain


def makes_cycle(account_id: str, parent_id: str, parents: Parents) -> bool:
    """Tell whether parent_id is account_id or one of its descendants."""
    return parent_id == account_id or account_id in ancestors(parent_id, parents)


def children_of(parents: Parents) -> dict[str, list[str]]:
    children: defaultdict[str, list[str]] = defaultdict(list)
    for account, parent in parents.items():
        if parent is not None:
            children[parent].append(account)
    return children


def descendants(account_id: str, parents: Parents) -> list[str]:
    """Return the account's descendants (any depth), breadth first, without the account."""
    children = children_of(parents)
    found: list[str] = []
    seen = {account_id}
    frontier = [account_id]
    while frontier:
        next_frontier = []
        for account in frontier:
            for child in children.get(account, ()):
                if child not in seen:
                    seen.add(child)
                    found.append(child)
                    next_frontier.append(child)
        frontier = next_frontier
    return found


@dataclass
class Rollup:
    """Per account: its own plus all descendants' counts, and their distinct active users."""

    counts: defaultdict[tuple[str, str, str], int] = field(
        default_factory=lambda: defaultdict(int)
    )  # (account, module, activity) -> count
    users: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    chains: dict[str, list[str]] = field(default_factory=dict)

    def add(self, row: CountRow, parents: Parents) -> None:
        """Add a row to its account and to each of the account's ancestors."""
        chain = self.chains.get(row.account_id)
        if chain is None:
            chain = [row.account_id, *ancestors(row.account_id, parents)]
            self.chains[row.account_id] = chain
        for account in chain:
            self.counts[(account, row.module, row.activity)] += row.count
            if row.user_id:
                self.users[account].add(row.user_id)
