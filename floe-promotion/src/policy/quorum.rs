//! The approval quorum: every rule gets its `required` approvals from distinct people, each
//! person counting toward one rule only. Whether approvals can be so assigned is a bipartite
//! matching (people to rule slots), not a sum of votes: one person in two groups fills one
//! slot, never two.

use std::collections::BTreeMap;

use crate::config::ApprovalRule;
use crate::model::Actor;

/// How approvals are assigned to rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Quorum {
    /// Per rule (in rule order), the approvers assigned to it.
    pub assigned: BTreeMap<String, Vec<String>>,
    /// Per rule still short, how many approvals it lacks, in rule order.
    pub missing: Vec<(String, u32)>,
}

impl Quorum {
    /// Whether every rule has its approvals.
    pub fn is_met(&self) -> bool {
        self.missing.is_empty()
    }
}

/// The largest assignment of `approvers` (distinct people; a repeated id counts once) to the
/// slots of `rules`, each person to one slot of a rule that admits them.
pub fn quorum(rules: &[ApprovalRule], approvers: &[Actor]) -> Quorum {
    let mut people: Vec<&Actor> = Vec::new();
    for a in approvers {
        if !people.iter().any(|p| p.id == a.id) {
            people.push(a);
        }
    }
    // One slot per required approval of each rule.
    let slots: Vec<usize> = rules
        .iter()
        .enumerate()
        .flat_map(|(i, r)| std::iter::repeat_n(i, r.required as usize))
        .collect();
    // slot_owner[s] = the person filling slot s.
    let mut slot_owner: Vec<Option<usize>> = vec![None; slots.len()];
    for person in 0..people.len() {
        let mut seen = vec![false; slots.len()];
        augment(person, &people, rules, &slots, &mut slot_owner, &mut seen);
    }
    let mut out = Quorum::default();
    for (i, rule) in rules.iter().enumerate() {
        let filled: Vec<String> = slots
            .iter()
            .zip(&slot_owner)
            .filter(|(r, _)| **r == i)
            .filter_map(|(_, o)| o.map(|p| people[p].id.clone()))
            .collect();
        let short = rule.required.saturating_sub(filled.len() as u32);
        if short > 0 {
            out.missing.push((rule.name.clone(), short));
        }
        out.assigned.insert(rule.name.clone(), filled);
    }
    out
}

/// Kuhn's augmenting path: tries to give `person` a slot, moving earlier people along.
fn augment(
    person: usize,
    people: &[&Actor],
    rules: &[ApprovalRule],
    slots: &[usize],
    slot_owner: &mut [Option<usize>],
    seen: &mut [bool],
) -> bool {
    for s in 0..slots.len() {
        if seen[s] || !rules[slots[s]].admits(people[person]) {
            continue;
        }
        seen[s] = true;
        let free = match slot_owner[s] {
            None => true,
            Some(other) => augment(other, people, rules, slots, slot_owner, seen),
        };
        if free {
            slot_owner[s] = Some(person);
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rule(name: &str, required: u32, users: &[&str], groups: &[&str]) -> ApprovalRule {
        ApprovalRule {
            name: name.into(),
            required,
            users: users.iter().map(|s| s.to_string()).collect(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn actor(id: &str, groups: &[&str]) -> Actor {
        Actor::new(id).unwrap().with_groups(groups.iter().copied())
    }

    #[test]
    fn one_person_in_two_groups_fills_one_rule_only() {
        let rules = [
            rule("security", 1, &[], &["sec"]),
            rule("release", 1, &[], &["rel"]),
        ];
        let both = actor("ann", &["sec", "rel"]);
        let q = quorum(&rules, std::slice::from_ref(&both));
        assert!(!q.is_met());
        assert_eq!(q.missing.len(), 1);
        let q = quorum(&rules, &[both.clone(), both.clone()]);
        assert!(!q.is_met(), "the same person twice is one person");
        let q = quorum(&rules, &[both, actor("bob", &["rel"])]);
        assert!(q.is_met(), "{q:?}");
        assert_eq!(q.assigned["security"], ["ann"]);
        assert_eq!(q.assigned["release"], ["bob"]);
    }

    #[test]
    fn a_later_approver_can_move_an_earlier_one() {
        // ann could fill either rule; bob only security: the matching moves ann to release.
        let rules = [
            rule("security", 1, &["ann", "bob"], &[]),
            rule("release", 1, &["ann"], &[]),
        ];
        let q = quorum(&rules, &[actor("ann", &[]), actor("bob", &[])]);
        assert!(q.is_met(), "{q:?}");
        assert_eq!(q.assigned["release"], ["ann"]);
    }

    #[test]
    fn someone_matching_no_rule_counts_for_nothing() {
        let rules = [rule("release", 2, &["a", "b"], &[])];
        let q = quorum(&rules, &[actor("a", &[]), actor("eve", &["admins"])]);
        assert_eq!(q.missing, [("release".to_string(), 1)]);
    }

    /// A brute-force check: is there an injective assignment filling every slot?
    fn feasible(rules: &[ApprovalRule], people: &[Actor]) -> bool {
        let slots: Vec<usize> = rules
            .iter()
            .enumerate()
            .flat_map(|(i, r)| std::iter::repeat_n(i, r.required as usize))
            .collect();
        fn go(
            s: usize,
            slots: &[usize],
            rules: &[ApprovalRule],
            people: &[Actor],
            used: &mut Vec<bool>,
        ) -> bool {
            if s == slots.len() {
                return true;
            }
            for p in 0..people.len() {
                if !used[p] && rules[slots[s]].admits(&people[p]) {
                    used[p] = true;
                    if go(s + 1, slots, rules, people, used) {
                        return true;
                    }
                    used[p] = false;
                }
            }
            false
        }
        go(0, &slots, rules, people, &mut vec![false; people.len()])
    }

    proptest! {
        #[test]
        fn the_matching_agrees_with_brute_force(
            rule_specs in proptest::collection::vec((1u32..3, proptest::collection::vec(0usize..5, 0..4), proptest::collection::vec(0usize..3, 0..2)), 1..4),
            people_specs in proptest::collection::vec(proptest::collection::vec(0usize..3, 0..3), 0..6),
        ) {
            let rules: Vec<ApprovalRule> = rule_specs.iter().enumerate().map(|(i, (req, users, groups))| ApprovalRule {
                name: format!("r{i}"),
                required: *req,
                users: users.iter().map(|u| format!("p{u}")).collect(),
                groups: groups.iter().map(|g| format!("g{g}")).collect(),
            }).collect();
            let people: Vec<Actor> = people_specs.iter().enumerate().map(|(i, gs)| {
                Actor::new(format!("p{i}")).unwrap().with_groups(gs.iter().map(|g| format!("g{g}")))
            }).collect();
            let q = quorum(&rules, &people);
            prop_assert_eq!(q.is_met(), feasible(&rules, &people));
            // Every assignment is valid: admitted, each person once.
            let mut used = std::collections::HashSet::new();
            for rule in &rules {
                let got = &q.assigned[&rule.name];
                prop_assert!(got.len() as u32 <= rule.required);
                for id in got {
                    let person = people.iter().find(|p| &p.id == id).unwrap();
                    prop_assert!(rule.admits(person));
                    prop_assert!(used.insert(id.clone()), "{} used twice", id);
                }
            }
        }
    }
}
