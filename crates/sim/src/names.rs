//! Enums whose values users type by name (profiles, links): each name is written once, in
//! the enum's declaration, and parsing, printing, the lists in error messages and (with the
//! `clap` feature) the command-line value enum all come from it.

/// A name that is none of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {given:?}; choose one of {}", known.join(", "))]
pub struct UnknownName {
    /// What was being named, e.g. "profile".
    pub what: &'static str,
    /// The name given.
    pub given: String,
    /// The names there are.
    pub known: Vec<&'static str>,
}

/// Declares a fieldless enum with one user-facing name per variant, plus `ALL`, `name()`,
/// `Display`, `FromStr` (exact names, [`UnknownName`] otherwise) and, with the `clap`
/// feature, `clap::ValueEnum` over the same names.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name users write.
            pub const fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::names::UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL.iter().copied().find(|v| v.name() == s).ok_or_else(|| $crate::names::UnknownName {
                    what: $what,
                    given: s.to_string(),
                    known: Self::ALL.iter().map(|v| v.name()).collect(),
                })
            }
        }

        #[cfg(feature = "clap")]
        impl clap::ValueEnum for $name {
            fn value_variants<'a>() -> &'a [Self] {
                Self::ALL
            }

            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                Some(clap::builder::PossibleValue::new(self.name()))
            }
        }
    };
}
