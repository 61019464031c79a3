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
    /// This node takes over from `from`, an older member with the role that is still in the
    /// membership (leaving, or downed but not yet removed): it may start only once `from`
    /// confirmed the hand-over or has been removed.
    TakeOver {
        /// The previous host.
        from: UniqueAddress,
    },
    /// This node is the host but is leaving: it stops its singleton and hands over.
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
/// The host is [`singleton_host`]. A leaving host hands over to the oldest Up member with the
/// role; that member takes over. A host that has an older member with the role in status
/// Down (not yet removed) takes over from it: a downed node counts as gone only once removed.
pub fn duty(members: &[Member], me: &UniqueAddress, role: Option<&str>) -> Duty {
    let host = singleton_host(members, role);
    let successor = || {
        members
            .iter()
            .filter(|m| m.status == MemberStatus::Up && has_role(m, role))
            .min_by(|a, b| a.age_key().cmp(&b.age_key()))
    };
    match host {
        None => Duty::Standby { host: None },
        Some(h) if &h.unique_address() == me => {
            if h.status != MemberStatus::Up {
                return Duty::HandOver {
                    to: successor().map(Member::unique_address),
                };
            }
            let older_down = members
                .iter()
                .filter(|m| {
                    m.status == MemberStatus::Down
                        && has_role(m, role)
                        && m.up_number != 0
                        && m.is_older_than(h)
                })
                .min_by(|a, b| a.age_key().cmp(&b.age_key()));
            match older_down {
                Some(d) => Duty::TakeOver {
                    from: d.unique_address(),
                },
                None => Duty::Host,
            }
        }
        Some(h) => {
            let leaving = h.status != MemberStatus::Up;
            if leaving && successor().is_some_and(|s| &s.unique_address() == me) {
                Duty::TakeOver {
                    from: h.unique_address(),
                }
            } else {
                Duty::Standby {
                    host: Some(h.unique_address()),
                }
            }
        }
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
            assert_eq!(duty(&ms, &me("c"), None), Duty::TakeOver { from: me("a") });
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
        assert_eq!(duty(&ms, &me("b"), None), Duty::TakeOver { from: me("a") });
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
