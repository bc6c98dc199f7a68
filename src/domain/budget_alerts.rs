//! When a budget's spending calls for an alert: once its period has spent 80 % of what it may,
//! and again at 100 %.

/// A share of a budget that, once spent in a period, is mailed about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Threshold {
    /// 80 %: the budget is close to running out.
    Near,
    /// 100 %: requests held on the budget are refused until it starts over.
    Reached,
}

impl Threshold {
    /// The share in percent, as stored and as people read it.
    pub fn percent(self) -> i64 {
        match self {
            Threshold::Near => 80,
            Threshold::Reached => 100,
        }
    }

    /// The highest threshold `spent` has reached of `limit`. None below 80 %, and for a budget
    /// that allows nothing: nothing can be spent of it, so there is nothing to warn about.
    pub fn reached(spent: i64, limit: i64) -> Option<Threshold> {
        if limit <= 0 {
            return None;
        }
        // Wide enough that no product of two stored amounts overflows.
        let (spent, limit) = (i128::from(spent), i128::from(limit));
        if spent >= limit {
            Some(Threshold::Reached)
        } else if spent * 100 >= limit * 80 {
            Some(Threshold::Near)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_threshold_reached_counts() {
        assert_eq!(Threshold::reached(0, 500), None);
        assert_eq!(Threshold::reached(399, 500), None);
        assert_eq!(Threshold::reached(400, 500), Some(Threshold::Near));
        assert_eq!(Threshold::reached(499, 500), Some(Threshold::Near));
        assert_eq!(Threshold::reached(500, 500), Some(Threshold::Reached));
        // A hold settled above its estimate can leave a period past its budget.
        assert_eq!(Threshold::reached(650, 500), Some(Threshold::Reached));
    }

    #[test]
    fn an_empty_budget_and_huge_amounts_are_no_trouble() {
        assert_eq!(Threshold::reached(10, 0), None);
        assert_eq!(Threshold::reached(0, -1), None);
        assert_eq!(
            Threshold::reached(i64::MAX, i64::MAX),
            Some(Threshold::Reached)
        );
        assert_eq!(
            Threshold::reached(i64::MAX - 1, i64::MAX),
            Some(Threshold::Near)
        );
        assert_eq!(Threshold::reached(i64::MAX / 2, i64::MAX), None);
    }
}
