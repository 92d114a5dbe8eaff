"""The account hierarchy: ancestors, descendants and subtree sums (pure functions)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

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

    def add_count(
        self, account_id: str, module: str, activity: str, count: int, parents: Parents
    ) -> None:
        """Add a count to its account and to each of the account's ancestors."""
        for account in self.chain(account_id, parents):
            self.counts[(account, module, activity)] += count

    def add_user(self, account_id: str, user_id: str, parents: Parents) -> None:
        """Count a user active in the account and in each of its ancestors."""
        for account in self.chain(account_id, parents):
            self.users[account].add(user_id)

    def chain(self, account_id: str, parents: Parents) -> list[str]:
        """The account and its ancestors, remembered per account."""
        chain = self.chains.get(account_id)
        if chain is None:
            chain = [account_id, *ancestors(account_id, parents)]
            self.chains[account_id] = chain
        return chain
