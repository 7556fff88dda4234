#include "quantlens/base/threadscope.h"

#include <omp.h>

namespace ql {

ThreadScope::ThreadScope(int threads)
{
    if (threads <= 0) return;
    m_previous = omp_get_max_threads(); // this thread's nthreads-var, not a process-wide value
    omp_set_num_threads(threads);
}

ThreadScope::~ThreadScope()
{
    if (m_previous > 0) omp_set_num_threads(m_previous);
}

} // namespace ql
