//! Terminal output helpers: styles, colour on/off (TTY and `NO_COLOR`), CJK-aware padding,
//! and role-play output ([`roleplay`]: the trust meter, the debrief).

pub mod roleplay;

use std::io::IsTerminal;

/// A text style.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Bold.
    Bold,
    /// Dimmed.
    Dim,
    /// Green (good).
    Green,
    /// Yellow (so-so).
    Yellow,
    /// Red (bad).
    Red,
    /// Cyan (headings, quotes).
    Cyan,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Bold => "1",
            Style::Dim => "2",
            Style::Green => "32",
            Style::Yellow => "33",
            Style::Red => "31",
            Style::Cyan => "36",
        }
    }
}

/// Applies styles when colour is on, passes text through when it is off.
#[derive(Clone, Copy, Debug)]
pub struct Painter {
    color: bool,
}

impl Painter {
    /// A painter with colour on or off.
    pub fn new(color: bool) -> Painter {
        Painter { color }
    }

    /// Colour when stdout is a terminal and `NO_COLOR` is unset or empty.
    pub fn for_stdout() -> Painter {
        Painter::new(color_wanted(std::io::stdout().is_terminal(), std::env::var_os("NO_COLOR")))
    }

    /// Whether colour is on.
    pub fn color(&self) -> bool {
        self.color
    }

    /// `s` in `style` (unchanged when colour is off).
    pub fn paint(&self, s: &str, style: Style) -> String {
        if self.color && !s.is_empty() {
            format!("\x1b[{}m{s}\x1b[0m", style.code())
        } else {
            s.to_string()
        }
    }
}

/// The colour decision: a terminal, and `NO_COLOR` unset or empty (<https://no-color.org>).
pub fn color_wanted(is_tty: bool, no_color: Option<std::ffi::OsString>) -> bool {
    is_tty && no_color.is_none_or(|v| v.is_empty())
}

/// Pads `s` with spaces to `width` display columns (CJK characters count two).
pub fn pad(s: &str, width: usize) -> String {
    let w = crate::text::display_width(s);
    format!("{s}{}", " ".repeat(width.saturating_sub(w)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_rules() {
        assert!(color_wanted(true, None));
        assert!(color_wanted(true, Some("".into())));
        assert!(!color_wanted(true, Some("1".into())));
        assert!(!color_wanted(false, None));
        assert_eq!(Painter::new(false).paint("x", Style::Red), "x");
        assert_eq!(Painter::new(true).paint("x", Style::Red), "\x1b[31mx\x1b[0m");
    }

    #[test]
    fn pads_cjk_by_columns() {
        assert_eq!(pad("现状", 6), "现状  ");
        assert_eq!(pad("Ask", 6), "Ask   ");
        assert_eq!(crate::text::display_width(&pad("已做努力", 10)), 10);
    }
}
