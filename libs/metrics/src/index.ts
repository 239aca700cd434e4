export {
  PipelineMetrics,
  processMetrics,
  type GaugeSample,
  type GaugeSource,
  type ScrapedGauge,
} from './pipeline-metrics';
export { meteredPublisher, meteredSubscription, type Stage } from './metered-bus';
