//! Where the singleton lives: the host function shared by manager and proxy, and the duty it
//! gives one node.
//!
//! Both are pure functions of the membership as one node sees it. Reachability is not an
//! input: an unreachable host stays the host until it is downed and removed, so a node never
//! starts a second instance because it merely lost sight of the first.

use crate::membership::{Member, MemberStatus, UniqueAddress};

/// Whether a member in `status` may host the singleton (Up, Leaving or Exiting).
pub fn can_host(status: MemberStatus) -> bool {
    matches!(
        status,
        MemberStatus::Up | MemberStatus::Leaving | MemberStatus::Exiting
    )
}

fn has_role(member: &Member, role: Option<&str>) -> bool {
    role.is_none_or(|r| member.has_role(r))
}

/// The host of the singleton: the oldest member (lowest up-number, ties by address) carrying
/// `role` whose status is Up, Leaving or Exiting, reachable or not.
///
/// In a healthy cluster without roles this is the leader's pick of the oldest node.
///
/// # Examples
///
/// ```
/// use actor_cluster::Address;
/// use actor_cluster::membership::{Member, MemberStatus};
/// use actor_cluster::singleton::singleton_host;
///
/// let member = |name: &str, up: u64, role: &str| Member {
///     status: MemberStatus::Up,
///     up_number: up,
///     ..Member::joining(Address::logical("sys", name).unwrap(), 1, [role])
/// };
/// let members = [member("a", 1, "web"), member("b", 2, "control-plane"), member("c", 3, "control-plane")];
/// assert_eq!(singleton_host(&members, None).unwrap().address.host(), "a");
/// assert_eq!(singleton_host(&members, Some("control-plane")).unwrap().address.host(), "b");
/// ```
pub fn singleton_host<'a>(
    members: impl IntoIterator<Item = &'a Member>,
    role: Option<&str>,
) -> Option<&'a Member> {
    members
        .into_iter()
        .filter(|m| can_host(m.status) && has_role(m, role))
        .min_by(|a, b| a.age_key().cmp(&b.age_key()))
}

/// What one node's manager must do, given the membership it sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Duty {
    /// This node is the host and no older member with the role is still around: it may run
    /// the singleton.
    Host,
    /// This node is next in line (the oldest Up member with the role), but older members
    /// with the role that may still run an instance are in the membership: it may start
    /// only once every one of them has confirmed the hand-over or has been removed.
    ///
    /// Any of them may be the one running the singleton: after a hand-over the previous host
    /// lingers (Leaving, Exiting) while its successor runs the singleton, and that successor
    /// may itself leave or be downed before the old host is removed.
    TakeOver {
        /// The oldest of them (the previous host as [`singleton_host`] sees it, or a downed
        /// member older than it).
        from: UniqueAddress,
        /// The leaving or exiting ones, oldest first: each is asked and must confirm the
        /// hand-over (or be removed).
        confirm: Vec<UniqueAddress>,
        /// The downed ones, oldest first: only their removal counts (they are not asked; a
        /// downed node may be cut off and still running), or a confirmation each gave
        /// before it was downed.
        removal: Vec<UniqueAddress>,
    },
    /// This node is leaving (or exiting) and is older than the member next in line, so it
    /// may have run the singleton: it stops it and confirms the hand-over to `to`.
    HandOver {
        /// The member next in line (the oldest Up member with the role), if any.
        to: Option<UniqueAddress>,
    },
    /// Another node hosts (or no node can).
    Standby {
        /// The host, if any.
        host: Option<UniqueAddress>,
    },
}

/// The duty of node `me`, from the members it sees (Removed members are absent) and the
/// singleton's role.
///
/// The host is [`singleton_host`]. The member next in line is the oldest **Up** member with
/// the role. It hosts at once when no older member with the role that was ever Up is still
/// around; otherwise it takes over ([`Duty::TakeOver`]) from **all** of them: the leaving
/// and exiting ones must confirm, the downed ones must be removed. A leaving or exiting
/// member older than the one next in line hands over to it; everyone else stands by.
///
/// # Examples
///
/// ```
/// use actor_cluster::Address;
/// use actor_cluster::membership::{Member, MemberStatus};
/// use actor_cluster::singleton::{Duty, duty};
///
/// let member = |name: &str, up: u64, status| Member {
///     status,
///     up_number: up,
///     ..Member::joining(Address::logical("sys", name).unwrap(), 1, Vec::<String>::new())
/// };
/// // x handed over to y long ago and lingers as Exiting; now y leaves too
/// let ms = [
///     member("x", 1, MemberStatus::Exiting),
///     member("y", 2, MemberStatus::Leaving),
///     member("z", 3, MemberStatus::Up),
/// ];
/// let [x, y, z] = [&ms[0], &ms[1], &ms[2]].map(|m| m.unique_address());
/// assert_eq!(
///     duty(&ms, &z, None),
///     Duty::TakeOver { from: x.clone(), confirm: vec![x, y.clone()], removal: vec![] },
/// );
/// assert_eq!(duty(&ms, &y, None), Duty::HandOver { to: Some(z) });
/// ```
pub fn duty(members: &[Member], me: &UniqueAddress, role: Option<&str>) -> Duty {
    let Some(host) = singleton_host(members, role) else {
        return Duty::Standby { host: None };
    };
    let successor = members
        .iter()
        .filter(|m| m.status == MemberStatus::Up && has_role(m, role))
        .min_by(|a, b| a.age_key().cmp(&b.age_key()));
    let ever_up_older_than = |m: &Member, than: Option<&Member>| {
        m.up_number != 0 && has_role(m, role) && than.is_none_or(|t| m.is_older_than(t))
    };
    if let Some(s) = successor
        && &s.unique_address() == me
    {
        let mut older: Vec<&Member> = members
            .iter()
            .filter(|m| {
                matches!(
                    m.status,
                    MemberStatus::Leaving | MemberStatus::Exiting | MemberStatus::Down
                ) && ever_up_older_than(m, Some(s))
            })
            .collect();
        older.sort_by(|a, b| a.age_key().cmp(&b.age_key()));
        let Some(oldest) = older.first() else {
            return Duty::Host;
        };
        let (down, leaving): (Vec<&Member>, Vec<&Member>) =
            older.iter().partition(|m| m.status == MemberStatus::Down);
        return Duty::TakeOver {
            from: oldest.unique_address(),
            confirm: leaving.iter().map(|m| m.unique_address()).collect(),
            removal: down.iter().map(|m| m.unique_address()).collect(),
        };
    }
    let mine = members.iter().find(|m| &m.unique_address() == me);
    match mine {
        Some(m)
            if matches!(m.status, MemberStatus::Leaving | MemberStatus::Exiting)
                && ever_up_older_than(m, successor) =>
        {
            Duty::HandOver {
                to: successor.map(Member::unique_address),
            }
        }
        _ => Duty::Standby {
            host: Some(host.unique_address()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Address;

    fn member(name: &str, up: u64, status: MemberStatus, roles: &[&str]) -> Member {
        Member {
            status,
            up_number: up,
            ..Member::joining(
                Address::logical("sys", name).expect("address"),
                7,
                roles.iter().copied(),
            )
        }
    }

    fn me(name: &str) -> UniqueAddress {
        UniqueAddress::new(Address::logical("sys", name).expect("address"), 7)
    }

    use MemberStatus::*;

    fn take_over(confirm: &[&str], removal: &[&str]) -> Duty {
        let mut all: Vec<&str> = confirm.iter().chain(removal).copied().collect();
        all.sort();
        Duty::TakeOver {
            from: me(all[0]),
            confirm: confirm.iter().map(|n| me(n)).collect(),
            removal: removal.iter().map(|n| me(n)).collect(),
        }
    }

    // S1: after x handed over to y, x lingers (Exiting) while y runs the singleton; y then
    // leaves. z must wait for y (which runs it), not only for x (which answers at once).
    #[test]
    fn a_chain_of_leaves_waits_for_every_older_member_that_may_run() {
        let ms = [
            member("x", 1, Exiting, &[]),
            member("y", 2, Leaving, &[]),
            member("z", 3, Up, &[]),
        ];
        assert_eq!(duty(&ms, &me("z"), None), take_over(&["x", "y"], &[]));
        // y, which may run it, stops it and confirms to z
        assert_eq!(
            duty(&ms, &me("y"), None),
            Duty::HandOver { to: Some(me("z")) }
        );
        assert_eq!(
            duty(&ms, &me("x"), None),
            Duty::HandOver { to: Some(me("z")) }
        );
        // x removed: z still waits for y, and only for y
        let ms = [member("y", 2, Leaving, &[]), member("z", 3, Up, &[])];
        assert_eq!(duty(&ms, &me("z"), None), take_over(&["y"], &[]));
    }

    // S1 with a downing: y ran the singleton and was downed (it may be cut off and still
    // running); z waits for y's removal, and x's confirmation alone does not count
    #[test]
    fn a_downed_successor_of_a_lingering_host_is_waited_for_until_removed() {
        let ms = [
            member("x", 1, Exiting, &[]),
            member("y", 2, Down, &[]),
            member("z", 3, Up, &[]),
        ];
        assert_eq!(duty(&ms, &me("z"), None), take_over(&["x"], &["y"]));
        let ms = [member("y", 2, Down, &[]), member("z", 3, Up, &[])];
        assert_eq!(duty(&ms, &me("z"), None), take_over(&[], &["y"]));
        let ms = [member("z", 3, Up, &[])];
        assert_eq!(duty(&ms, &me("z"), None), Duty::Host);
    }

    #[test]
    fn a_young_leaving_member_and_a_never_up_member_are_not_waited_for() {
        let ms = [
            member("a", 0, Down, &[]),
            member("b", 1, Up, &[]),
            member("c", 2, Leaving, &[]),
        ];
        assert_eq!(duty(&ms, &me("b"), None), Duty::Host);
        assert_eq!(
            duty(&ms, &me("c"), None),
            Duty::Standby {
                host: Some(me("b"))
            }
        );
    }

    #[test]
    fn the_oldest_up_member_hosts() {
        let ms = [member("a", 2, Up, &[]), member("b", 1, Up, &[])];
        assert_eq!(singleton_host(&ms, None).map(|m| m.up_number), Some(1));
        assert_eq!(duty(&ms, &me("b"), None), Duty::Host);
        assert_eq!(
            duty(&ms, &me("a"), None),
            Duty::Standby {
                host: Some(me("b"))
            }
        );
    }

    #[test]
    fn joining_down_and_unassigned_members_never_host() {
        let ms = [
            member("a", 0, Joining, &[]),
            member("b", 1, Down, &[]),
            member("c", 0, WeaklyUp, &[]),
        ];
        assert_eq!(singleton_host(&ms, None), None);
        assert_eq!(duty(&ms, &me("a"), None), Duty::Standby { host: None });
    }

    #[test]
    fn a_leaving_host_hands_over_to_the_oldest_up_member() {
        for status in [Leaving, Exiting] {
            let ms = [
                member("a", 1, status, &[]),
                member("b", 3, Up, &[]),
                member("c", 2, Up, &[]),
            ];
            assert_eq!(singleton_host(&ms, None).map(|m| m.up_number), Some(1));
            assert_eq!(
                duty(&ms, &me("a"), None),
                Duty::HandOver { to: Some(me("c")) }
            );
            assert_eq!(duty(&ms, &me("c"), None), take_over(&["a"], &[]));
            assert_eq!(
                duty(&ms, &me("b"), None),
                Duty::Standby {
                    host: Some(me("a"))
                }
            );
        }
    }

    #[test]
    fn a_downed_older_member_is_waited_for_until_removed() {
        let ms = [member("a", 1, Down, &[]), member("b", 2, Up, &[])];
        assert_eq!(duty(&ms, &me("b"), None), take_over(&[], &["a"]));
        let removed = [member("b", 2, Up, &[])];
        assert_eq!(duty(&removed, &me("b"), None), Duty::Host);
    }

    #[test]
    fn roles_restrict_the_host() {
        let ms = [
            member("a", 1, Up, &["web"]),
            member("b", 2, Up, &["control-plane"]),
            member("c", 3, Up, &["control-plane"]),
        ];
        let role = Some("control-plane");
        assert_eq!(duty(&ms, &me("b"), role), Duty::Host);
        assert_eq!(
            duty(&ms, &me("a"), role),
            Duty::Standby {
                host: Some(me("b"))
            }
        );
        // a downed node without the role does not hold anyone back
        let ms = [
            member("a", 1, Down, &["web"]),
            member("b", 2, Up, &["control-plane"]),
        ];
        assert_eq!(duty(&ms, &me("b"), role), Duty::Host);
    }

    #[test]
    fn reachability_is_not_an_input() {
        // the signature has no reachability: an unreachable oldest member still hosts
        let ms = [member("a", 1, Up, &[]), member("b", 2, Up, &[])];
        assert_eq!(
            duty(&ms, &me("b"), None),
            Duty::Standby {
                host: Some(me("a"))
            }
        );
    }
}
