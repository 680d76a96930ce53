/** The built-in scenarios by name. */
import type { ScenarioName } from '../options.js';
import { broadcast } from './broadcast.js';
import { crowd } from './crowd.js';
import { echo } from './echo.js';
import { pubsub } from './pubsub.js';
import { slow } from './slow.js';
import type { Scenario } from '../client-context.js';
import { userScenario } from '../user/context.js';

export type { ClientContext, Scenario, SlowSample } from '../client-context.js';

export const SCENARIO_RUNNERS: Readonly<Record<ScenarioName, Scenario>> = { echo: userScenario(echo), slow, broadcast, pubsub, crowd };
