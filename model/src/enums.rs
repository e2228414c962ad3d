//! The closed enumerations of `events.md`, each with its exact wire names.

/// Declares a fieldless enum with its wire names, `parse` and `as_str`.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, serde::Serialize, serde::Deserialize)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire name's variant, or `None` outside the domain.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The wire names, for error messages.
            pub fn domain() -> &'static str {
                concat!($($text, " "),+).trim_ascii_end()
            }
        }
    };
}

wire_enum!(
    /// The `type` of a canonical record.
    RecordType {
        School = "school", Staff = "staff", Enrollment = "enrollment", Attendance = "attendance",
        Discipline = "discipline", Grade = "grade", HealthVisit = "health_visit",
        Program = "program", Caseload = "caseload", Section = "section", Ticket = "ticket",
    }
);
wire_enum!(SchoolLevel { Elementary = "elementary", Middle = "middle", High = "high", Span = "span" });
wire_enum!(StaffRole {
    Teacher = "teacher", Counselor = "counselor", Psw = "psw", Nurse = "nurse",
    Principal = "principal", MaintenanceSupervisor = "maintenance_supervisor",
    HelpdeskLead = "helpdesk_lead", DistrictAdmin = "district_admin",
});
wire_enum!(AttendanceStatus {
    Present = "present", Tardy = "tardy", AbsentExcused = "absent_excused",
    AbsentUnexcused = "absent_unexcused", Suspended = "suspended",
});
wire_enum!(DisciplineAction {
    Referral = "referral", InSchoolSuspension = "in_school_suspension",
    OutOfSchoolSuspension = "out_of_school_suspension", Expulsion = "expulsion",
});
wire_enum!(Subject { Ela = "ela", Math = "math", Science = "science", SocialStudies = "social_studies", Other = "other" });
wire_enum!(Mark { A = "A", B = "B", C = "C", D = "D", F = "F" });
wire_enum!(HealthReason {
    Illness = "illness", Injury = "injury", MentalHealth = "mental_health",
    ChronicCondition = "chronic_condition", Other = "other",
});
wire_enum!(ProgramKind {
    Homeless = "homeless", FosterYouth = "foster_youth", GroupHome = "group_home",
    JuvenileReturnee = "juvenile_returnee", AttendanceImprovement = "attendance_improvement",
    EnglishLearner = "english_learner", SpecialEducation = "special_education", LowIncome = "low_income",
});
wire_enum!(CaseloadRole { Counselor = "counselor", Psw = "psw" });
wire_enum!(TicketQueue { Facilities = "facilities", Family = "family" });
wire_enum!(TicketAction {
    Opened = "opened", Assigned = "assigned", OnHold = "on_hold", Resumed = "resumed",
    Resolved = "resolved", Reopened = "reopened", Closed = "closed",
});
wire_enum!(TicketPriority { Emergency = "emergency", Urgent = "urgent", Routine = "routine" });

impl AttendanceStatus {
    /// `absent_excused`, `absent_unexcused` and `suspended` count as absences.
    pub fn is_absence(self) -> bool {
        matches!(self, Self::AbsentExcused | Self::AbsentUnexcused | Self::Suspended)
    }
}

impl DisciplineAction {
    pub fn is_suspension(self) -> bool {
        matches!(self, Self::InSchoolSuspension | Self::OutOfSchoolSuspension)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for status in AttendanceStatus::ALL {
            assert_eq!(AttendanceStatus::parse(status.as_str()), Some(*status));
        }
        assert_eq!(ProgramKind::parse("foster_youth"), Some(ProgramKind::FosterYouth));
        assert_eq!(Mark::parse("f"), None);
        assert_eq!(CaseloadRole::domain(), "counselor psw");
    }
}
