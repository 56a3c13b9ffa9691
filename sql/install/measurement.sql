-- Measurement (docs/measurement.md): the statistics the analyst reports
-- call per row, and the attribution windows they count conversions in.
-- These functions read no table.

-- An arm against its control: the uplift (ratio of conversion rates), its
-- 95% Katz log interval, the two-proportion z-test's p-value, the smallest
-- uplift the sample detects with 80% power, and a hint while the result is
-- not significant.
CREATE FUNCTION personalisation.uplift_test(
    exposed bigint, converted bigint, control_exposed bigint, control_converted bigint,
    OUT uplift float8, OUT uplift_low float8, OUT uplift_high float8, OUT p_value float8,
    OUT min_detectable_uplift float8, OUT sample_hint text)
RETURNS record LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'uplift_test';

-- One line saying what an experiment's result lets the shop claim.
CREATE FUNCTION personalisation.uplift_claim(
    experiment text, metric text, units bigint, unit_name text,
    uplift float8, uplift_low float8, uplift_high float8, p_value float8)
RETURNS text LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'uplift_claim';

-- personalisation.ranking_attribution_window and
-- personalisation.repeat_order_window as intervals.
CREATE FUNCTION personalisation.ranking_attribution_window()
RETURNS interval LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'ranking_attribution_window';

CREATE FUNCTION personalisation.repeat_order_window()
RETURNS interval LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'repeat_order_window';
