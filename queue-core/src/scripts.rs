//! The waiting room's Redis steps, one Lua script each, so each is atomic
//! and costs one command. They only apply what the rules decided: ticket
//! numbers and the join limit ([`JOIN`]), a frontier move as
//! [`crate::admission::Proposal::apply`] specifies it plus the visitor's
//! own entry ([`ADMIT`]), and the end of a visit ([`END`]).
//!
//! A visitor's whole life costs three of them: join, admit (or claim a
//! place someone else's move admitted), finish; two when let in on arrival
//! ([`JOIN_AND_ADMIT`]). Polls read, never write.
//!
//! The active set (`EventKeys::active`) holds, scored in milliseconds:
//! `r:{position}`, an entry slot reserved for an admitted position until it
//! is claimed or lapses; `v:{visitor}`, a session until it expires; and
//! `v:{visitor}` scored negative (minus the time it ended), a finished visit,
//! remembered so its ticket is never admitted again. Live entries are those
//! scored above now.

// The body of [`JOIN`], shared with [`JOIN_AND_ADMIT`].
macro_rules! join_function {
    () => {
        r#"
local function join(K, A)
  if A[1] ~= 'freeze' and tonumber(A[3]) > 0 then
    local joins = 1
    if not redis.call('SET', K[1], '1', 'EX', A[4], 'NX') then joins = redis.call('INCR', K[1]) end
    if joins > tonumber(A[3]) then return {'limited', joins} end
  end
  local size = redis.call('GET', K[4])
  if not size and A[1] == 'prequeue' then return {'pre', redis.call('INCR', K[2])} end
  if not size then
    size = redis.call('GET', K[2]) or '0'
    redis.call('SET', K[4], size)
    redis.call('SET', K[5], A[2])
  end
  if A[1] == 'freeze' then return {'size', tonumber(size), redis.call('GET', K[5])} end
  return {'main', redis.call('INCR', K[3]), tonumber(size), redis.call('GET', K[5])}
end
"#
    };
}

/// `KEYS`: the join counter of this address and minute, the pre-queue and
/// queue ticket counters, the pre-queue's size and seed.
/// `ARGV`: mode (`prequeue`, `queue`, or `freeze`), a seed in hex (kept only
/// if this call fixes the pre-queue), joins allowed per address and minute
/// (0: no limit), the counter's lifetime in seconds.
///
/// In the pre-queue it numbers pre-queue tickets (`{'pre', n}`); the first
/// call after the sale start fixes the pre-queue's size and seed, exactly
/// once, then numbers queue tickets (`{'main', n, pre-queue size,
/// seed}`). `freeze` only fixes and returns them (`{'size', size, seed}`).
/// A join beyond the limit gets `{'limited', joins}` and no ticket.
pub const JOIN: &str = concat!(join_function!(), "return join(KEYS, ARGV)\n");

// The body of [`ADMIT`], shared with [`JOIN_AND_ADMIT`].
macro_rules! admit_function {
    () => {
        r#"
local function admit(K, A)
  local now = tonumber(A[10])
  local current = redis.call('GET', K[1])
  local version, admitted, capped, moved_ms = 0, 0, false, 0
  if current then
    local f = cjson.decode(current)
    version, admitted, capped, moved_ms = f.version, f.admitted, f.capped == true, f.at_ms
  end
  local settings = redis.call('GET', K[5])
  local paused = settings and cjson.decode(settings).paused == true
  local proposed = A[1] ~= '-1'
  local max_newly, credit, rate_base = tonumber(A[2]), tonumber(A[3]), tonumber(A[5])
  local usable = proposed and version == tonumber(A[1])
  -- A proposal from an older frontier, less what was admitted since
  -- (`Proposal::rebased`).
  if proposed and version > tonumber(A[1]) and moved_ms <= tonumber(A[4]) then
    local since = admitted - tonumber(A[8])
    if since >= 0 and max_newly > since then
      max_newly, credit, rate_base = max_newly - since, credit - since, rate_base + tonumber(A[6]) * since
      usable = true
    end
  end
  local stale = 0
  if proposed and not usable then stale = 1 end
  if usable and not paused then
    redis.call('ZREMRANGEBYSCORE', K[2], '(' .. (-(now - tonumber(A[15]))), now)
    local issued = tonumber(redis.call('GET', K[3]) or '0') + tonumber(redis.call('GET', K[4]) or '0')
    local active = redis.call('ZCOUNT', K[2], '(' .. now, '+inf')
    local waiting = math.max(issued - admitted, 0)
    local wanted = math.min(max_newly, waiting)
    local newly = math.min(wanted, math.max(tonumber(A[9]) - active, 0))
    local now_capped = newly < wanted
    if newly > 0 or now_capped ~= capped then
      local rate = rate_base + tonumber(A[6]) * newly
      if now_capped and not capped then rate = tonumber(A[7]) end
      current = string.format(
        '{"version":%d,"admitted":%d,"credit":%.17g,"at_ms":%d,"rate":%.17g,"backlog":%s,"capped":%s}',
        version + 1, admitted + newly, credit - newly, tonumber(A[4]), rate,
        tostring(waiting > newly), tostring(now_capped))
      redis.call('SET', K[1], current)
      for first = admitted + 1, admitted + newly, 1000 do
        local slots = {}
        for position = first, math.min(first + 999, admitted + newly) do
          slots[#slots + 1] = A[11]
          slots[#slots + 1] = 'r:' .. position
        end
        redis.call('ZADD', K[2], unpack(slots))
      end
      admitted = admitted + newly
    end
  end
  current = current or ''
  if tonumber(A[12]) > admitted then return {'waiting', 0, current, stale} end
  local member = 'v:' .. A[13]
  local score = tonumber(redis.call('ZSCORE', K[2], member))
  if score and score < 0 then return {'ended', 0, current, stale} end
  if score and score > now then return {'session', score, current, stale} end
  local slot = 'r:' .. A[12]
  local reserved = tonumber(redis.call('ZSCORE', K[2], slot))
  if reserved then redis.call('ZREM', K[2], slot) end
  if not (reserved and reserved > now)
     and redis.call('ZCOUNT', K[2], '(' .. now, '+inf') >= tonumber(A[9]) then
    return {'full', 0, current, stale}
  end
  redis.call('ZADD', K[2], A[14], member)
  return {'session', tonumber(A[14]), current, stale}
end
"#
    };
}

/// `KEYS`: the frontier, the active set, the queue and pre-queue ticket
/// counters, the event's settings.
/// `ARGV`: the proposal (1 version, 2 max newly admitted, 3 credit, 4 at_ms,
/// 5 rate base, 6 rate per admission, 7 rate when the cap begins to bind,
/// 8 admitted; version `-1` proposes nothing), 9 the active cap, 10 now
/// (ms), 11 until when a new entry slot is reserved, 12 the visitor's
/// position, 13 the visitor, 14 until when a new session runs, 15 how long
/// finished visits are remembered (ms).
///
/// Moves the frontier, unless the organizer has paused the room, with the
/// proposal as made if nobody moved it since the proposal's version, or
/// else as [`crate::admission::Proposal::rebased`] says: as many as the
/// credit, the waiting tickets and the free active slots allow, each with
/// an entry slot (nothing is written if that is nobody and nothing
/// changed). Then, if the visitor's position is admitted, starts their
/// session, in their reserved slot or a free one. Returns `{state, until,
/// frontier, stale}`: state `session` (until when), `waiting` (not
/// admitted), `full` (admitted, every slot taken) or `ended` (this visit is
/// over); the frontier as it now stands; `stale` 1 if the proposal could
/// not be applied because of moves since its version.
pub const ADMIT: &str = concat!(admit_function!(), "return admit(KEYS, ARGV)\n");

/// A join after the sale start and the new ticket's admission in one
/// command: [`JOIN`] in `queue` mode, then, for a ticket, [`ADMIT`] at its
/// position (the pre-queue's size plus its number), so a visitor let in on
/// arrival costs one write instead of two.
/// `KEYS`: [`JOIN`]'s five, then the frontier, the active set and the
/// event's settings. `ARGV`: [`JOIN`]'s four, then [`ADMIT`]'s fifteen
/// (its position, the twelfth, is the new ticket's whatever is sent).
/// Returns [`JOIN`]'s reply, and for a ticket [`ADMIT`]'s after it:
/// `{'main', n, size, seed, state, until, frontier, stale}`.
pub const JOIN_AND_ADMIT: &str = concat!(
    join_function!(),
    admit_function!(),
    r#"
local joined = join({KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]}, {ARGV[1], ARGV[2], ARGV[3], ARGV[4]})
if joined[1] ~= 'main' then return joined end
local args = {}
for i = 5, #ARGV do args[#args + 1] = ARGV[i] end
args[12] = tostring(joined[3] + joined[2])
local entry = admit({KEYS[6], KEYS[7], KEYS[3], KEYS[2], KEYS[8]}, args)
return {'main', joined[2], joined[3], joined[4], entry[1], entry[2], entry[3], entry[4]}
"#
);

/// `ADMIT`'s first eight arguments: `proposal`, or none (claim only).
pub fn proposal_args(proposal: Option<&crate::admission::Proposal>) -> [String; 8] {
    match proposal {
        Some(p) => [
            p.version.to_string(),
            p.max_newly().to_string(),
            p.credit.to_string(),
            p.at_ms.to_string(),
            p.rate_base.to_string(),
            p.rate_per_admission.to_string(),
            p.rate_when_capped.to_string(),
            p.admitted.to_string(),
        ],
        None => ["-1", "0", "0", "0", "0", "0", "0", "0"].map(String::from),
    }
}

/// `KEYS`: the active set. `ARGV`: the visitor, now (ms).
///
/// Ends a visit in one write: the visitor's entry is scored minus now,
/// which frees their slot and keeps their ticket from entering again.
pub const END: &str = r#"
redis.call('ZADD', KEYS[1], -tonumber(ARGV[2]), 'v:' .. ARGV[1])
return 1
"#;
