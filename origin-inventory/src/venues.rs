//! Venues and their seat maps, created in one call from a compact
//! description: price tiers, then sections made of rows (`label`, seat
//! count) or a general-admission capacity.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;

const MAX_SEATS_PER_VENUE: usize = 200_000;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VenueSpec {
    pub name: String,
    pub city: String,
    pub timezone: String,
    pub tiers: Vec<TierSpec>,
    pub sections: Vec<SectionSpec>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierSpec {
    pub name: String,
    pub price_cents: i64,
    pub currency: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SectionSpec {
    pub name: String,
    /// The tier of every seat in the section, unless a row says otherwise.
    pub tier: String,
    #[serde(default)]
    pub rows: Vec<RowSpec>,
    /// General admission: this many unnumbered places instead of rows.
    pub capacity: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RowSpec {
    pub label: String,
    pub seats: u32,
    pub tier: Option<String>,
    /// Seat numbers with wheelchair access.
    #[serde(default)]
    pub accessible: Vec<u32>,
}

/// One seat as the database stores it, before ids are assigned.
#[derive(Debug, PartialEq)]
pub struct PlannedSeat {
    pub section: usize,
    pub tier: usize,
    pub row: String,
    pub number: i32,
    pub accessible: bool,
}

/// General-admission places get this row label.
pub const GA_ROW: &str = "GA";

impl VenueSpec {
    /// Validates the description and expands it into seats.
    pub fn plan(&self) -> Result<Vec<PlannedSeat>, String> {
        non_empty("name", &self.name, 200)?;
        non_empty("city", &self.city, 100)?;
        if self.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(format!("timezone `{}` is not an IANA zone like `Europe/Berlin`", self.timezone));
        }
        if self.tiers.is_empty() || self.sections.is_empty() {
            return Err("a venue needs at least one tier and one section".into());
        }
        let mut tiers = HashMap::new();
        for (i, tier) in self.tiers.iter().enumerate() {
            non_empty("tier name", &tier.name, 100)?;
            if tier.price_cents < 0 {
                return Err(format!("tier `{}` has a negative price", tier.name));
            }
            if tier.currency.len() != 3 || !tier.currency.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(format!("tier `{}`: currency must be an ISO code like EUR", tier.name));
            }
            if tiers.insert(tier.name.as_str(), i).is_some() {
                return Err(format!("tier `{}` is defined twice", tier.name));
            }
        }
        if self.tiers.iter().any(|t| t.currency != self.tiers[0].currency) {
            return Err("all tiers of a venue use one currency".into());
        }
        let tier_index =
            |name: &str| tiers.get(name).copied().ok_or_else(|| format!("unknown tier `{name}`"));

        let mut seats = Vec::new();
        let mut section_names = BTreeSet::new();
        for (s, section) in self.sections.iter().enumerate() {
            non_empty("section name", &section.name, 100)?;
            if !section_names.insert(section.name.as_str()) {
                return Err(format!("section `{}` is defined twice", section.name));
            }
            let section_tier = tier_index(&section.tier)?;
            match (section.capacity, section.rows.is_empty()) {
                (Some(capacity), true) if capacity > 0 => {
                    // Bounded before anything is materialised or converted.
                    let room = MAX_SEATS_PER_VENUE - seats.len().min(MAX_SEATS_PER_VENUE);
                    let capacity = i32::try_from(capacity)
                        .ok()
                        .filter(|c| usize::try_from(*c).is_ok_and(|c| c <= room))
                        .ok_or_else(|| format!("a venue holds at most {MAX_SEATS_PER_VENUE} seats"))?;
                    seats.extend((1..=capacity).map(|number| PlannedSeat {
                        section: s,
                        tier: section_tier,
                        row: GA_ROW.into(),
                        number,
                        accessible: false,
                    }));
                }
                (None, false) => {
                    let mut labels = BTreeSet::new();
                    for row in &section.rows {
                        non_empty("row label", &row.label, 10)?;
                        if !labels.insert(row.label.as_str()) {
                            return Err(format!("row `{}` appears twice in `{}`", row.label, section.name));
                        }
                        if row.seats == 0 || row.seats > 1000 {
                            return Err(format!("row `{}` needs 1 to 1000 seats", row.label));
                        }
                        if let Some(bad) = row.accessible.iter().find(|n| **n == 0 || **n > row.seats) {
                            return Err(format!("row `{}` has no seat {bad}", row.label));
                        }
                        let tier = match &row.tier {
                            Some(name) => tier_index(name)?,
                            None => section_tier,
                        };
                        seats.extend((1..=row.seats).map(|number| PlannedSeat {
                            section: s,
                            tier,
                            row: row.label.clone(),
                            number: number as i32,
                            accessible: row.accessible.contains(&number),
                        }));
                    }
                }
                _ => {
                    return Err(format!(
                        "section `{}` needs either rows or a positive general-admission capacity",
                        section.name
                    ));
                }
            }
            if seats.len() > MAX_SEATS_PER_VENUE {
                return Err(format!("a venue holds at most {MAX_SEATS_PER_VENUE} seats"));
            }
        }
        Ok(seats)
    }
}

fn non_empty(what: &str, value: &str, max: usize) -> Result<(), String> {
    if value.trim().is_empty() || value.chars().count() > max {
        return Err(format!("{what} must be 1 to {max} characters"));
    }
    Ok(())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VenueCreated {
    pub id: Uuid,
    pub seats: usize,
    pub sections: Vec<NamedId>,
    pub tiers: Vec<NamedId>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NamedId {
    pub id: Uuid,
    pub name: String,
}

/// Stores a venue with its whole seat map in one transaction.
pub async fn create_venue(db: &PgPool, organizer: Uuid, spec: &VenueSpec) -> Result<VenueCreated, ApiError> {
    let seats = spec.plan().map_err(ApiError::invalid)?;
    let venue_id = Uuid::new_v4();
    let tier_ids: Vec<Uuid> = spec.tiers.iter().map(|_| Uuid::new_v4()).collect();
    let section_ids: Vec<Uuid> = spec.sections.iter().map(|_| Uuid::new_v4()).collect();

    let mut tx = db.begin().await?;
    sqlx::query!(
        "INSERT INTO venues (id, organizer_id, name, city, timezone) VALUES ($1, $2, $3, $4, $5)",
        venue_id,
        organizer,
        &spec.name,
        &spec.city,
        &spec.timezone,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO price_tiers (id, venue_id, name, price_cents, currency)
         SELECT id, $1, name, price, currency
         FROM unnest($2::uuid[], $3::text[], $4::bigint[], $5::text[]) AS t(id, name, price, currency)",
        venue_id,
        &tier_ids,
        &spec.tiers.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
        &spec.tiers.iter().map(|t| t.price_cents).collect::<Vec<_>>(),
        &spec.tiers.iter().map(|t| t.currency.clone()).collect::<Vec<_>>(),
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO sections (id, venue_id, name, position, general_admission)
         SELECT id, $1, name, position, ga
         FROM unnest($2::uuid[], $3::text[], $4::int[], $5::bool[]) AS s(id, name, position, ga)",
        venue_id,
        &section_ids,
        &spec.sections.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
        &(0..spec.sections.len() as i32).collect::<Vec<_>>(),
        &spec.sections.iter().map(|s| s.capacity.is_some()).collect::<Vec<_>>(),
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO seats (id, venue_id, section_id, tier_id, row_label, number, accessible)
         SELECT id, $1, section_id, tier_id, row_label, number, accessible
         FROM unnest($7::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::int[], $6::bool[])
              AS s(id, section_id, tier_id, row_label, number, accessible)",
        venue_id,
        &seats.iter().map(|s| section_ids[s.section]).collect::<Vec<_>>(),
        &seats.iter().map(|s| tier_ids[s.tier]).collect::<Vec<_>>(),
        &seats.iter().map(|s| s.row.clone()).collect::<Vec<_>>(),
        &seats.iter().map(|s| s.number).collect::<Vec<_>>(),
        &seats.iter().map(|s| s.accessible).collect::<Vec<_>>(),
        // In the plan's order, so a section's neighbouring seats are
        // neighbours in `inventory`'s key too.
        &seats.iter().map(|_| crate::ids::time_ordered()).collect::<Vec<_>>(),
    )
    .execute(&mut *tx)
    .await?;
    // Migration 0011: each seat's description, as holds and tickets show it.
    sqlx::query!("SELECT describe_seats($1)", venue_id).execute(&mut *tx).await?;
    tx.commit().await?;

    let named = |ids: &[Uuid], names: Vec<String>| {
        ids.iter().zip(names).map(|(id, name)| NamedId { id: *id, name }).collect()
    };
    Ok(VenueCreated {
        id: venue_id,
        seats: seats.len(),
        sections: named(&section_ids, spec.sections.iter().map(|s| s.name.clone()).collect()),
        tiers: named(&tier_ids, spec.tiers.iter().map(|t| t.name.clone()).collect()),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VenueSummary {
    id: Uuid,
    name: String,
    city: String,
    timezone: String,
    seats: i64,
}

/// A venue of the organizer's, with its seat count.
pub async fn venue_summary(
    db: &PgPool,
    organizer: Uuid,
    id: Uuid,
) -> Result<Option<VenueSummary>, sqlx::Error> {
    sqlx::query_as!(
        VenueSummary,
        r#"SELECT v.id, v.name, v.city, v.timezone,
                  (SELECT count(*) FROM seats s WHERE s.venue_id = v.id) AS "seats!"
           FROM venues v WHERE v.id = $1 AND v.organizer_id = $2"#,
        id,
        organizer,
    )
    .fetch_optional(db)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> VenueSpec {
        serde_json::from_value(json).unwrap()
    }

    fn arena() -> serde_json::Value {
        serde_json::json!({
            "name": "Arena", "city": "Berlin", "timezone": "Europe/Berlin",
            "tiers": [{"name": "A", "price_cents": 9900, "currency": "EUR"},
                      {"name": "B", "price_cents": 4900, "currency": "EUR"}],
            "sections": [
                {"name": "Floor", "tier": "B", "capacity": 3},
                {"name": "Lower", "tier": "A", "rows": [
                    {"label": "1", "seats": 2, "accessible": [1]},
                    {"label": "2", "seats": 2, "tier": "B"}]}
            ]
        })
    }

    #[test]
    fn rows_and_general_admission_expand_into_seats() {
        let seats = spec(arena()).plan().unwrap();
        assert_eq!(seats.len(), 7);
        assert_eq!(seats.iter().filter(|s| s.row == GA_ROW).count(), 3);
        assert_eq!(
            seats[3],
            PlannedSeat { section: 1, tier: 0, row: "1".into(), number: 1, accessible: true }
        );
        assert_eq!(seats[6].tier, 1, "a row's own tier overrides the section's");
    }

    #[test]
    fn inconsistent_descriptions_are_refused_with_a_reason() {
        let cases: Vec<(&str, serde_json::Value)> = vec![
            ("unknown tier", serde_json::json!("C")),
            ("negative", serde_json::json!(-1)),
            ("timezone", serde_json::json!("Mars")),
            ("twice", serde_json::json!("Lower")),
            ("either rows or", serde_json::json!(null)),
        ];
        for (expected, value) in cases {
            let mut json = arena();
            match expected {
                "unknown tier" => json["sections"][0]["tier"] = value,
                "negative" => json["tiers"][0]["price_cents"] = value,
                "timezone" => json["timezone"] = value,
                "twice" => json["sections"][0]["name"] = value,
                _ => json["sections"][0]["capacity"] = value,
            }
            let err = spec(json).plan().unwrap_err();
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }

    #[test]
    fn accessible_seats_must_exist() {
        let mut json = arena();
        json["sections"][1]["rows"][0]["accessible"] = serde_json::json!([3]);
        assert!(spec(json).plan().unwrap_err().contains("no seat 3"));
    }
}
