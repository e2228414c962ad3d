//! Interning of opaque identifiers into dense `u32` symbols, so that a district's state
//! (600,000 students) holds four bytes per reference instead of a string.

use compact_str::CompactString;
use rustc_hash::FxHashMap;

/// A dense symbol handed out by an [`Interner`]; meaningful only with that interner.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Sym(pub u32);

/// Maps strings to dense symbols and back. One interner per identifier space
/// (students, schools, staff, ...), owned by the single ingest sequencer.
#[derive(Default, Debug)]
pub struct Interner {
    by_text: FxHashMap<CompactString, Sym>,
    texts: Vec<CompactString>,
}

impl Interner {
    pub fn intern(&mut self, text: &str) -> Sym {
        if let Some(&sym) = self.by_text.get(text) {
            return sym;
        }
        let sym = Sym(u32::try_from(self.texts.len()).expect("fewer than 2^32 identifiers"));
        self.texts.push(CompactString::from(text));
        self.by_text.insert(CompactString::from(text), sym);
        sym
    }

    pub fn get(&self, text: &str) -> Option<Sym> {
        self.by_text.get(text).copied()
    }

    pub fn resolve(&self, sym: Sym) -> &str {
        &self.texts[sym.0 as usize]
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_reversible() {
        let mut interner = Interner::default();
        let a = interner.intern("stu-1");
        let b = interner.intern("stu-2");
        assert_ne!(a, b);
        assert_eq!(interner.intern("stu-1"), a);
        assert_eq!(interner.resolve(b), "stu-2");
        assert_eq!(interner.get("stu-3"), None);
    }
}
