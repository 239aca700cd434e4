export { DirectoryArtifactStore, ArtifactNotFoundError } from './artifact-store';
