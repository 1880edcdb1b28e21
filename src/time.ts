/** Calendar checks shared by the request formats and the listing cursor. */

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Whether six capture groups of `m` from `first` on (year, month, day, hour, minute, second) name
 * an instant that a JS Date and Postgres both hold as written: years 1–9999 (Postgres prints
 * year 0 as "1 BC"), real days of the month, no leap second (a JS Date cannot hold 23:59:60).
 */
export function isCalendarInstant(m: RegExpExecArray, first: number): boolean {
  const [year, month, day, hour, minute, second] = m.slice(first, first + 6).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = month === 2 && !leap ? 28 : (DAYS_IN_MONTH[month - 1] ?? 0);
  return year >= 1 && year <= 9999 && day >= 1 && day <= days && hour <= 23 && minute <= 59 && second <= 59;
}
