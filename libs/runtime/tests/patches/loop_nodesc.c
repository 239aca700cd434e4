/* A shared object without the dsu_patch descriptor: must be refused. */
int __dsu_impl_compute__nodesc(int x) { return -x; }
