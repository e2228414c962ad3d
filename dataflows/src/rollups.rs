//! School and rollup counts: the students' (school, category) pairs and the oversized
//! sections, joined with the school directory and summed per school, community of
//! schools, local district and the district.
//!
//! Design: every ratio of metrics.md is a ratio of two of these counts, so a rollup
//! recomputes it from pooled student-school years (never averaging school rates). The
//! inputs change rarely (a tier moves, a school year crosses 31 days), so the joins here
//! see few updates. A correction to a school's community moves its counts by retraction.

use crate::evaluate::Category;
use config::SectionParams;
use differential_dataflow::VecCollection;
use model::{SchoolInfo, Subject, Sym};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Where a count belongs.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum RollupKey {
    School(Sym),
    Community(Sym),
    LocalDistrict(Sym),
    District,
}

/// Counts per (rollup key, category), as a collection whose multiplicities are the counts.
pub fn rollup_counts<'s>(
    contributions: VecCollection<'s, u64, (Sym, Category), isize>,
    schools: VecCollection<'s, u64, (Sym, SchoolInfo), isize>,
    sections: VecCollection<'s, u64, (Sym, (Subject, u32)), isize>,
    section_params: Arc<SectionParams>,
) -> VecCollection<'s, u64, (RollupKey, Category), isize> {
    let levels = schools.clone().map(|(school, info)| (school, info.level));
    let oversized = sections
        .join(levels)
        .filter(move |(_, ((subject, enrolled), level))| section_params.is_oversized(*level, *subject, *enrolled))
        .map(|(school, _)| (school, Category::OversizedSection));
    contributions.concat(oversized).join(schools).flat_map(|(school, (category, info))| {
        [
            (RollupKey::School(school), category),
            (RollupKey::Community(info.community), category),
            (RollupKey::LocalDistrict(info.local_district), category),
            (RollupKey::District, category),
        ]
    })
}
