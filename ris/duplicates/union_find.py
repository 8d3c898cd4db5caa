"""Disjoint sets of ids (union-find), which join verified pairs into groups."""

from __future__ import annotations


class UnionFind:
    """Disjoint sets of ids, with path halving."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, item: int) -> int:
        parent = self.parent.setdefault(item, item)
        while parent != item:
            grandparent = self.parent[parent]
            self.parent[item] = grandparent
            item, parent = parent, self.parent.setdefault(grandparent, grandparent)
        return item

    def union(self, first: int, second: int) -> bool:
        """Join the two sets; False when they were already one."""
        first_root, second_root = self.find(first), self.find(second)
        if first_root == second_root:
            return False
        self.parent[second_root] = first_root
        return True

    def sets(self) -> list[list[int]]:
        """Every set of more than one item."""
        members: dict[int, list[int]] = {}
        for item in self.parent:
            members.setdefault(self.find(item), []).append(item)
        return [items for items in members.values() if len(items) > 1]
